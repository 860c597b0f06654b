"""Fixtures for end-to-end tests: real JupyterHub + configurable-http-proxy + localmesos.

Fixtures (all function-scoped unless noted):
- hub_factory(extra_config="", **Hub kwargs) -> Hub      not started; `await hub.launch()`
- localmesos_proc(config_toml=None, **kwargs) -> LocalMesos   async: `m = await localmesos_proc()`
- localmesos_agent_proc(master, hostname, resources, attributes="", **kwargs) -> LocalMesosAgent
  async; a separate agent process, returned once the master lists it
From tests/services (registered by tests/conftest.py's pytest_plugins, or imported here):
- notebook_env (session) -> Path of the notebook venv's bin directory
- test_users (session) -> [SystemUser(name, uid, gid, home)] for mss-alice, mss-bob, mss-carol
- browser_page -> a Playwright async Page in headless Debian chromium
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.e2e.harness import Hub, LocalMesos, LocalMesosAgent, master_state  # noqa: E402
from tests.services.browser import browser_page  # noqa: E402, F401  (fixture)

__all__ = ["Hub", "LocalMesos", "LocalMesosAgent", "master_state"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives Debian chromium through Playwright")
    config.addinivalue_line("markers", "e2e: runs a real JupyterHub and proxy")


@pytest.fixture(autouse=True)
def _needs_proxy() -> None:
    if not shutil.which("configurable-http-proxy"):
        pytest.fail("configurable-http-proxy not on PATH (npm install -g configurable-http-proxy)")


@pytest.fixture
def hub_factory(tmp_path: Path, notebook_env: Path) -> Iterator[Callable[..., Hub]]:
    """Make Hub objects in tmp_path; at teardown stop them, their proxies and notebooks."""
    hubs: list[Hub] = []

    def make(extra_config: str = "", **kwargs) -> Hub:
        kwargs.setdefault("notebook_bin", notebook_env)
        hub = Hub(tmp_path / f"hub{len(hubs)}", extra_config=extra_config, **kwargs)
        hubs.append(hub)
        return hub

    yield make
    for hub in reversed(hubs):
        hub.cleanup()


@pytest.fixture
def localmesos_proc(tmp_path: Path) -> Iterator[Callable[..., Awaitable[LocalMesos]]]:
    """Start `python -m mesosspawner.localmesos` on a free port; `.url` is the master URL.

    `await localmesos_proc(config_toml=None, port=0, extra_args=None)`; a None config means
    localmesos's default cluster. Everything started is killed at teardown.
    """
    started: list[LocalMesos] = []

    async def start(config_toml: str | None = None, **kwargs) -> LocalMesos:
        mesos = LocalMesos(tmp_path / f"localmesos{len(started)}", config_toml, **kwargs)
        started.append(mesos)
        mesos.start()
        await mesos.wait_ready()
        return mesos

    yield start
    for mesos in reversed(started):
        mesos.cleanup()


@pytest.fixture
def localmesos_agent_proc(tmp_path: Path) -> Iterator[Callable[..., Awaitable[LocalMesosAgent]]]:
    """Start a separate `localmesos agent` process; returns once the master lists it."""
    started: list[LocalMesosAgent] = []

    async def start(
        master: str,
        hostname: str,
        resources: str,
        attributes: str = "",
        state_url: str | None = None,
        **kwargs,
    ) -> LocalMesosAgent:
        """``state_url``: the master to ask for registration when ``master`` is a zk:// URL."""
        agent = LocalMesosAgent(
            tmp_path / f"agent{len(started)}", master, hostname, resources, attributes, **kwargs
        )
        started.append(agent)
        agent.start()
        await agent.wait_registered(state_url)
        return agent

    yield start
    for agent in reversed(started):
        agent.cleanup()


@pytest.fixture
def homes(test_users) -> Iterator[Path]:
    """Per-user home directories on 'shared storage', owned by each user (as a lab's are).

    Outside pytest's tmp_path, whose parents are private to root: the users must reach them.
    """
    base = Path(tempfile.mkdtemp(prefix="mesosspawner-homes-"))
    os.chmod(base, 0o755)
    for user in test_users:
        d = base / user.name
        d.mkdir()
        os.chown(d, user.uid, user.gid)
    yield base
    shutil.rmtree(base, ignore_errors=True)
