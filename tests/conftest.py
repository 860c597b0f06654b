"""Session-wide services for the suite: real ZooKeeper, Docker engine, registry, notebook envs.

A fixture skips only when its service is genuinely unavailable here (not installed, and not root
so scripts/setup.sh could not install it); a service that is installed but fails to start is an
error, never a skip.
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path

import pytest

from tests.services import real_mesos
from tests.services import zookeeper as zk_service

# Fixtures of the other services (docker_engine, docker_client, base_image, registry,
# notebook_image, notebook_env, test_users) are defined next to the code that starts them.
pytest_plugins = ["tests.services.docker", "tests.services.notebook_env"]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "missing"


def _http_parser_kind() -> str:
    try:
        import http_parser.parser  # noqa: F401
    except ImportError:
        return "pure-Python"
    return "C"


def pytest_report_header(config: pytest.Config) -> list[str]:
    def tool(name: str) -> str:
        return "yes" if shutil.which(name) else "missing"

    return [
        f"mesosspawner: python {platform.python_version()}, "
        f"{'root' if os.geteuid() == 0 else 'not root (root-only tiers skip)'}",
        f"services: zookeeper {'yes' if zk_service.ZK_SERVER.exists() else 'missing'}, "
        f"dockerd {tool('dockerd')}, docker-registry {tool('docker-registry')}, "
        f"debootstrap {tool('debootstrap')}, chromium {tool('chromium')}, "
        f"configurable-http-proxy {tool('configurable-http-proxy')}",
        f"real mesos: {real_mesos.mesos_home() or real_mesos.why_unavailable()}",
        f"peers: pymesos {_version('pymesos')} (http-parser {_http_parser_kind()}), "
        f"jupyterhub {_version('jupyterhub')}, kazoo {_version('kazoo')}",
    ]


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zk_service.ZooKeeper]:
    """A real standalone ZooKeeper on 127.0.0.1 (free port), shared by the session.

    Tests share it through distinct znode paths (``unique_zk_path``).
    """
    reason = zk_service.why_unavailable()
    if reason:
        pytest.skip(reason)
    if not zk_service.ZK_SERVER.exists():
        pytest.fail(f"{zk_service.ZK_SERVER} missing although root: run scripts/setup.sh")
    server = zk_service.start_zookeeper(tmp_path_factory.mktemp("zookeeper"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unique_zk_path(request: pytest.FixtureRequest) -> str:
    """A znode path (``/mesosspawner-tests/<test>-<random>``) no other test uses."""
    return zk_service.unique_path(request.node.name)


@pytest.fixture(scope="session")
def real_mesos_home() -> Path:
    """The real Mesos 1.11.0 install (``scripts/install-mesos.sh``); the tier skips without one.

    In CI (``CI=true``) a missing install fails instead: the bundle is there, so a skip would
    hide a broken install step.
    """
    reason = real_mesos.why_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return real_mesos.mesos_home()


@pytest.fixture
def real_cluster(real_mesos_home, tmp_path) -> Iterator[Callable[..., real_mesos.RealCluster]]:
    """Factory: ``real_cluster(agents=..., zk=..., masters=..., docker=...)`` starts a real
    Mesos master (or two through ZooKeeper) with agents; all are stopped at teardown."""
    started: list[real_mesos.RealCluster] = []

    def make(**kwargs) -> real_mesos.RealCluster:
        work = tmp_path / f"real-mesos-{len(started)}"
        cluster = real_mesos.start_cluster(work, **kwargs)
        started.append(cluster)
        return cluster

    yield make
    for cluster in started:
        cluster.stop()
