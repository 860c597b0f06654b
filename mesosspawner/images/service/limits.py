"""What an admin bounds in the images service (``mesosspawner-images serve --help``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    build_timeout: float = 900.0  # seconds, wall clock, for build + strip + push
    max_image_size: int = 8 * 2**30  # bytes, the built image as the engine reports it
    max_queued_per_user: int = 3  # builds waiting or running per person
    max_queued_total: int = 20  # builds waiting or running, everyone's together
    max_concurrent: int = 1  # builds running at once on the engine
    max_packages: int = 20
    allow_apt: bool = True
    memory: int = 2 * 2**30  # bytes of RAM for the build container (no swap)
    cpus: float = 1.0  # CPUs the build container may use
    pids: int = 512  # processes and threads in the build container
    max_log_bytes: int = 2 * 2**20  # of one build's log kept and shown; the rest is dropped
