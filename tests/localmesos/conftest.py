"""Fixtures for the localmesos conformance tests, which run against BOTH masters.

A test that asks for ``backend`` (or ``connect``) runs on localmesos in-process and on real
Mesos 1.11.0 (``mesos_kind``; ``-k real`` selects the latter), each with the same agents
(``CONFORMANCE_AGENTS``: ``agent-1``, ``gpu-1`` with 2 GPUs, ``spark-1`` reserved for
``spark``). Tests of what only localmesos has (its CLI, cluster file, processes, internals) do
not ask for a backend and run once. ``connect`` opens raw v1 scheduler connections (plain
sockets, so chunking and RecordIO are seen as sent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from mesosspawner.localmesos.config import from_dict
from mesosspawner.localmesos.testing import RawScheduler, start_cli, stop_cli
from tests.services.cluster import CONFORMANCE_AGENTS, Cluster


@pytest.fixture
async def make_backend(mesos_kind, clusters) -> Callable[..., Cluster]:
    """``await make_backend(offer_timeout=None, docker=False, executor_registration_timeout=
    None)``: a master of the test's kind with the conformance agents, stopped after the test."""

    async def make(
        *,
        offer_timeout: float | None = None,
        docker: bool = False,
        executor_registration_timeout: float | None = None,
    ) -> Cluster:
        if mesos_kind == "real":
            master = (f"--offer_timeout={int(offer_timeout * 1000)}ms",) if offer_timeout else ()
            agent = ()
            if executor_registration_timeout:
                ms = int(executor_registration_timeout * 1000)
                agent = (f"--executor_registration_timeout={ms}ms",)
            return clusters(
                "real", CONFORMANCE_AGENTS, docker=docker, master_flags=master, agent_flags=agent
            )
        options = {}
        if executor_registration_timeout:
            options["executor_registration_timeout"] = executor_registration_timeout
        return await clusters.in_process(CONFORMANCE_AGENTS, offer_timeout=offer_timeout, **options)

    return make


@pytest.fixture
async def backend(make_backend) -> Cluster:
    """The master the test runs against (see ``make_backend``)."""
    return await make_backend()


@pytest.fixture(name="cluster_config")
def cluster_config_fixture():
    """The conformance agents as a localmesos ClusterConfig, for tests that start their own."""
    return from_dict({"agent": [a.as_dict() for a in CONFORMANCE_AGENTS]}, "<test cluster>")


@pytest.fixture
async def connect(backend) -> AsyncIterator[Callable[..., RawScheduler]]:
    """Factory of raw scheduler connections to ``backend``; all closed at teardown."""
    conns: list[RawScheduler] = []

    def make(url: str | None = None) -> RawScheduler:
        conn = RawScheduler(url or backend.url)
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
