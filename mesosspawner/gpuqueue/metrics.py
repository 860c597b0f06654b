"""Prometheus metrics of the GPU queue (JupyterHub serves them on /hub/metrics)."""

from __future__ import annotations

from typing import Any

_METRICS: dict[str, Any] | None = None


def queue_metrics() -> dict[str, Any]:
    """The GPU queue's metrics, registered once per process."""
    global _METRICS
    if _METRICS is None:
        from prometheus_client import Counter, Gauge, Histogram

        _METRICS = {
            "queue_length": Gauge(
                "mesosspawner_gpu_queue_length",
                "GPU requests waiting in the queue, per profile",
                ["profile"],
            ),
            "wait": Histogram(
                "mesosspawner_gpu_queue_wait_seconds",
                "Time from joining the GPU queue to the launch, per group",
                ["group"],
                buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
            ),
            "gpu_hours": Counter(
                "mesosspawner_gpu_hours",
                "GPU-hours held by each group's GPU servers (not decayed)",
                ["group"],
            ),
            "in_use": Gauge(
                "mesosspawner_gpus_in_use", "GPUs held by each group's GPU servers", ["group"]
            ),
            "culls": Counter(
                "mesosspawner_gpu_culls",
                "GPU servers culled, by reason (idle, max-age, reclaim)",
                ["reason"],
            ),
            "refused": Counter(
                "mesosspawner_gpu_quota_refusals",
                "GPU requests refused at once for a quota, per group",
                ["group"],
            ),
        }
    return _METRICS
