"""Fixtures for the localmesos conformance tests: an in-process cluster, the CLI as a subprocess,
and a raw v1 scheduler connection (plain sockets, so chunking and RecordIO are seen as sent)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from mesosspawner.localmesos.cluster import LocalCluster
from mesosspawner.localmesos.config import from_dict
from mesosspawner.localmesos.testing import RawScheduler, running_cluster, start_cli, stop_cli

TEST_CLUSTER = {
    "agent": [
        {
            "hostname": "agent-1",
            "resources": "cpus:4;mem:4096;disk:10000;ports:[31000-31009]",
            "attributes": "rack:r1",
        },
        {
            "hostname": "gpu-1",
            "resources": "cpus:4;mem:4096;disk:10000;gpus:2;ports:[32000-32009]",
            "attributes": "rack:r1;gpu_model:a100",
        },
        {
            "hostname": "spark-1",
            "resources": "cpus(spark):4;mem(spark):4096;cpus:1;mem:512;ports:[33000-33009]",
            "attributes": "rack:r2;spark_cluster:prod",
        },
    ]
}


@pytest.fixture
def cluster_config():
    return from_dict(TEST_CLUSTER, "<test cluster>")


@pytest.fixture
async def cluster(cluster_config, tmp_path) -> AsyncIterator[LocalCluster]:
    """An in-process cluster on a free port with short heartbeats and timeouts."""
    work = str(tmp_path / "work")
    async with running_cluster(
        cluster_config, work, agent_unreachable_timeout=1.0, allocation_interval=0.2
    ) as c:
        yield c


@pytest.fixture
async def connect(cluster) -> AsyncIterator[Callable[..., RawScheduler]]:
    """Factory of raw scheduler connections to ``cluster``; all closed at teardown."""
    conns: list[RawScheduler] = []

    def make(url: str | None = None) -> RawScheduler:
        conn = RawScheduler(url or cluster.url)
        conns.append(conn)
        return conn

    yield make
    for conn in conns:
        await conn.close()


@pytest.fixture
def cli_master(tmp_path) -> Iterator[str]:
    """The CLI with the default cluster on a free port; yields its URL."""
    proc, url = start_cli(["--port", "0", "--heartbeat-interval", "1"], tmp_path / "master.log")
    try:
        yield url
    finally:
        stop_cli(proc)
