"""Fixtures for the localmesos conformance tests, which run against BOTH masters.

A test that asks for ``backend`` (or ``connect``) runs on localmesos in-process and on real
Mesos 1.11.0 (``mesos_kind``; ``-k real`` selects the latter), each with the same agents
(``CONFORMANCE_AGENTS``: ``agent-1``, ``gpu-1`` with 2 GPUs, ``spark-1`` reserved for
``spark``). The real tests of a module share one cluster, reset after each; a test marked
``own_cluster`` gets its own. Tests of what only localmesos has (its CLI, cluster file,
processes, internals) do not ask for a backend and run once. ``connect`` opens raw v1
scheduler connections (plain sockets, so chunking and RecordIO are seen as sent).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from tornado.httpclient import AsyncHTTPClient

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


class SharedReal:
    """Real Mesos shared by a module's tests that leave their cluster as they found it: after
    each, every framework is torn down (operator API) and every agent is idle again. A cluster
    that does not get there is replaced."""

    def __init__(self, module_clusters) -> None:
        self.module_clusters = module_clusters
        self.cluster: Cluster | None = None

    def get(self) -> Cluster:
        if self.cluster is None:
            self.cluster = self.module_clusters("real", CONFORMANCE_AGENTS)
        return self.cluster

    async def reset(self) -> None:
        cluster = self.cluster
        if cluster is None:
            return
        try:
            await asyncio.wait_for(_quiesce(cluster), 30)
        except Exception:  # noqa: BLE001 - whatever went wrong, the next test gets a fresh one
            cluster.close()
            self.cluster = None


async def _quiesce(cluster: Cluster) -> None:
    client = AsyncHTTPClient()
    while True:
        state = await cluster.state()
        for fw in state["frameworks"]:
            body = {"type": "TEARDOWN", "teardown": {"framework_id": {"value": fw["id"]}}}
            await client.fetch(
                f"{cluster.master_url}/api/v1",
                method="POST",
                body=json.dumps(body),
                headers={"Content-Type": "application/json"},
            )
        agents = state["slaves"]
        idle = all(
            a.get("active") and not any(a["used_resources"].get(r) for r in ("cpus", "mem", "gpus"))
            for a in agents
        )
        if not state["frameworks"] and idle and len(agents) == len(cluster.agents):
            return
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def shared_real(mesos_kind, module_clusters) -> SharedReal | None:
    return SharedReal(module_clusters) if mesos_kind == "real" else None


@pytest.fixture
async def backend(
    make_backend, shared_real: SharedReal | None, request: pytest.FixtureRequest
) -> AsyncIterator[Cluster]:
    """The master the test runs against: in-process localmesos of its own, or the module's
    shared real Mesos, unless the test is marked ``own_cluster`` (it faults agents or leaves
    reservations behind) and gets one of its own (see ``make_backend``)."""
    if shared_real is None or request.node.get_closest_marker("own_cluster"):
        yield await make_backend()
        return
    yield shared_real.get()
    await shared_real.reset()


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
    # Its tasks run as root, as the conformance suites' real agents run them.
    args = ["--port", "0", "--heartbeat-interval", "1", "--allow-root-tasks"]
    proc, url = start_cli(args, tmp_path / "master.log")
    try:
        yield url
    finally:
        stop_cli(proc)
