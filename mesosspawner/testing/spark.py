"""Spark on real Mesos, for the Spark test and ``benchmarks/bench_spark.py``: the lab's Spark
images in a loopback registry that keeps them, the agents' Mesos JNI library, and the Docker
containers a cluster's agents leave behind.

Spark 3.5 speaks to Mesos through libmesos (the v0 scheduler driver), which localmesos does not
implement: whatever runs a Spark job here runs real Mesos.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from mesosspawner.images import downloads
from mesosspawner.images import lab as images

from . import real_mesos
from .registry import start_registry, stop_registry

SUM = 49999995000000  # spark.range(10**7).selectExpr("sum(id)")
DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"


def registry_storage() -> Path:
    """Where the Spark images' layers are kept between runs, beside the downloads cache.
    Delete it to reclaim the space (about 1.4 GB per content hash)."""
    return downloads.cache_dir().parent / "test-registry"


@contextlib.contextmanager
def cached_registry(workdir: Path) -> Iterator[str]:
    """``127.0.0.1:PORT`` of a registry whose storage outlives it (``registry_storage``): the
    Spark images are pushed once per machine and content hash, not on every run."""
    registry = start_registry(workdir, storage=registry_storage())
    try:
        yield registry.address
    finally:
        stop_registry(registry)


def build_images(
    client, registry: str, base_image: str, log: Callable[[str], None] = print
) -> dict[str, str]:
    """spark-notebook and spark-executor (and base-notebook, which they are built on) built
    on ``base_image`` or reused by content hash, pushed to ``registry``; name -> reference
    pinned by digest."""
    results = images.build_and_push(
        client,
        DOCKER_DIR,
        registry,
        only=["spark-executor"],
        build_args={"BASE_IMAGE": base_image},
        push=True,
        log=log,
    )
    return {name: f"{r.ref.rpartition(':')[0]}@{r.digest}" for name, r in results.items()}


def java_library() -> Path | None:
    """The agents' Mesos JNI library (``lib/libmesos-java.so`` beside libmesos, as
    ``scripts/install-mesos.sh`` installs it), or None when real Mesos or it is missing."""
    home = real_mesos.mesos_home()
    library = home / "lib" / "libmesos-java.so" if home is not None else None
    return library if library is not None and library.exists() else None


def containers_under(client, root: Path) -> list[dict]:
    """Docker containers (summaries: Id, State, Mounts) whose sandbox mount lies under
    ``root`` (a cluster's work directory). Read in one call: agents remove exited ones any
    time."""
    return [
        c
        for c in client.api.containers(all=True)
        if any(m.get("Source", "").startswith(str(root)) for m in c.get("Mounts", []))
    ]


def remove_containers_under(client, root: Path) -> list[str]:
    """Remove (by force) every container ``containers_under(root)``; their ids."""
    import docker

    removed = []
    for c in containers_under(client, root):
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            client.api.remove_container(c["Id"], force=True)
            removed.append(c["Id"])
    return removed
