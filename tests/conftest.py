"""The suite's fixtures are registered here once, from the plugin modules in tests/services/,
and its tier markers are derived from the fixtures each test uses (one hook, below).

A fixture skips only when its service is genuinely unavailable here (not installed, and not root
so scripts/setup.sh could not install it); a service that is installed but fails to start is an
error, never a skip.
"""

from __future__ import annotations

import os
import platform
import shutil
from importlib import metadata

import pytest

from mesosspawner.testing import real_mesos

pytest_plugins = [
    # Plugins imported by later ones come first (pytest rewrites asserts only on first import).
    "tests.services.zookeeper",  # zookeeper, unique_zk_path
    "tests.services.docker",  # docker_engine, docker_client, base_image, registry, images
    "tests.services.browser",  # browser_page
    "tests.services.cluster",  # clusters on localmesos or real Mesos: mesos_kind, clusters
    "tests.services.hubs",  # hubs and their people: hub_factory, user, homes, notebook_env
    "tests.services.spark",  # Spark on real Mesos: spark_images, spark_cluster(_factory)
]

# A test that uses any of these fixtures gets the marker (see pyproject.toml for each one).
MARKER_FIXTURES = {
    "docker": {
        "docker_engine",
        "docker_client",
        "base_image",
        "registry",
        "auth_registry",
        "notebook_image",
    },
    "browser": {"browser_page"},
    "zookeeper": {"zookeeper"},
    "real_mesos": {"real_mesos_home"},
    "e2e": {"proxy"},
}
# A test of any tier above is slow, and so is one that runs notebooks.
SLOW_FIXTURES = {"notebook_env"}


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
    from mesosspawner.testing import zookeeper as zk_service

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


def markers_for(fixturenames: set[str], params: dict) -> set[str]:
    """The tier markers of a test that uses ``fixturenames`` with parameters ``params``."""
    found = {mark for mark, names in MARKER_FIXTURES.items() if fixturenames & names}
    if params.get("mesos_kind") == "real":
        found.add("real_mesos")
    if found or fixturenames & SLOW_FIXTURES:
        found.add("slow")
    return found


def shared_group(item: pytest.Item) -> str | None:
    """The tests that share a module-scoped hub or cluster (one per master kind) form a group
    that pytest-xdist keeps on one worker (``--dist loadgroup``), so each starts once; every
    other test is scheduled on its own."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    shared = [
        name
        for name, defs in info.name2fixturedefs.items()
        if name != "mesos_kind" and defs and defs[-1].scope in ("module", "class", "package")
    ]
    if not shared:
        return None
    callspec = getattr(item, "callspec", None)
    kind = callspec.params.get("mesos_kind") if callspec else None
    return f"{item.module.__name__}-{kind}" if kind else item.module.__name__


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        for mark in sorted(markers_for(names, callspec.params if callspec else {})):
            item.add_marker(mark)
        group = shared_group(item)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
