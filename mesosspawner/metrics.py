"""Prometheus metrics of the shared framework (JupyterHub serves them on /metrics)."""

from __future__ import annotations

from typing import Any

_METRICS: dict[str, Any] | None = None


def framework_metrics() -> dict[str, Any]:
    """Prometheus metrics, registered once per process (JupyterHub serves them on /metrics)."""
    global _METRICS
    if _METRICS is None:
        from prometheus_client import Counter, Gauge, Histogram

        _METRICS = {
            "pending": Gauge(
                "mesosspawner_pending_requests", "Notebook launches waiting for offers"
            ),
            "offers": Counter("mesosspawner_offers_received", "Mesos offers received"),
            "declined": Counter("mesosspawner_offers_declined", "Mesos offers declined"),
            "latency": Histogram(
                "mesosspawner_launch_seconds",
                "Time from request to TASK_RUNNING",
                buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            ),
            "states": Counter(
                "mesosspawner_task_updates", "Task status updates by state", ["state"]
            ),
        }
    return _METRICS
