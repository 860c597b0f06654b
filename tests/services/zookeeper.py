"""ZooKeeper fixtures: ``zookeeper`` (session: a real server, ``mesosspawner.testing.zookeeper``)
and ``unique_zk_path`` (a znode path no other test uses)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mesosspawner.testing.zookeeper import (  # noqa: F401  (re-exported for the suite)
    ZK_SERVER,
    ZooKeeper,
    start_zookeeper,
    unique_path,
    why_unavailable,
)


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeper]:
    """A real standalone ZooKeeper on 127.0.0.1 (free port), shared by the session.

    Tests share it through distinct znode paths (``unique_zk_path``).
    """
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    if not ZK_SERVER.exists():
        pytest.fail(f"{ZK_SERVER} missing although root: run scripts/setup.sh")
    server = start_zookeeper(tmp_path_factory.mktemp("zookeeper"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unique_zk_path(request: pytest.FixtureRequest) -> str:
    """A znode path (``/mesosspawner-tests/<test>-<random>``) no other test uses."""
    return unique_path(request.node.name)
