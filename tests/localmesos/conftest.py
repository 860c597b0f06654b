"""Fixtures for the localmesos conformance tests, which run against BOTH masters.

``backend`` is localmesos (in-process) or real Mesos 1.11.0 (``-k real`` selects the latter).
Tests of what only localmesos has (its CLI, cluster file, processes, internals) do not ask for a
backend and run once. ``connect`` opens raw v1 scheduler connections (plain sockets, so
chunking and RecordIO are seen as sent).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from mesosspawner.localmesos.testing import RawScheduler, start_cli, stop_cli
from tests.localmesos.backends import Backend, cluster_config, start_local, start_real

BACKENDS = ["localmesos", pytest.param("real", marks=pytest.mark.real_mesos)]


@pytest.fixture(params=BACKENDS)
def backend_kind(request) -> str:
    if request.param == "real":
        request.getfixturevalue("real_mesos_home")  # skips (or fails in CI) without Mesos
    return request.param


@pytest.fixture
async def make_backend(backend_kind) -> AsyncIterator[Callable[..., Backend]]:
    """Factory: ``await make_backend(offer_timeout=None, docker=False, ...)`` starts a master with
    agents
    ``agent-1``, ``gpu-1`` (2 GPUs) and ``spark-1`` (spark-reserved); all stopped at teardown."""
    started: list[Backend] = []
    dirs: list[str] = []

    async def make(
        *,
        offer_timeout: float | None = None,
        docker: bool = False,
        executor_registration_timeout: float | None = None,
    ) -> Backend:
        # World-traversable (tmp_path is not): tasks run as other users (command.user).
        work = Path(tempfile.mkdtemp(prefix=f"conformance-{backend_kind}-"))
        os.chmod(work, 0o755)
        dirs.append(str(work))
        if backend_kind == "real":
            extra = (f"--offer_timeout={int(offer_timeout * 1000)}ms",) if offer_timeout else ()
            agent_extra = ()
            if executor_registration_timeout:
                ms = int(executor_registration_timeout * 1000)
                agent_extra = (f"--executor_registration_timeout={ms}ms",)
            b: Backend = await start_real(
                work, master_extra=extra, agent_extra=agent_extra, docker=docker
            )
        else:
            options = {}
            if executor_registration_timeout:
                options["executor_registration_timeout"] = executor_registration_timeout
            b = await start_local(work, offer_timeout=offer_timeout, **options)
        started.append(b)
        return b

    yield make
    for b in started:
        await b.close()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
async def backend(make_backend) -> Backend:
    """The master the test runs against (see ``make_backend``)."""
    return await make_backend()


@pytest.fixture(name="cluster_config")
def cluster_config_fixture():
    """The test agents as a localmesos ClusterConfig, for tests that start their own."""
    return cluster_config()


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
