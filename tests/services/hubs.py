"""Hubs and the people who use them: fixtures for tests through a real JupyterHub and proxy.

A module's tests share one hub (and its cluster) and each test gets people no other test of the
session has used (JupyterHub's own test suite has this shape: a module-scoped app, a fresh user
per test). A test that kills, restarts or reconfigures its hub starts its own with
``hub_factory``.

Fixtures:
- ``hub_factory(extra_config="", **Hub kwargs)`` -> Hub, not started (``await hub.launch()``);
  stopped with its proxy and notebooks after the test. ``module_hub_factory``: the same for a
  hub shared by the module (``.launch_blocking()`` in a module-scoped fixture).
- ``homes`` (session): the people's home directories on "shared storage", ``homes / name``.
- ``user``: a fresh system user (``SystemUser``) with a home in ``homes``; when the test uses a
  fixture named ``hub``, also a user of that hub, whose servers are stopped after the test.
  ``new_user()``: more of them (``alice, bob = await new_user(), await new_user()``).
- ``test_users`` (session): the three fixed users mss-alice, mss-bob, mss-carol.
- ``notebook_env`` (session): the bin directory of a notebook venv every user can execute.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from mesosspawner.testing.hub import Hub
from mesosspawner.testing.notebook_env import SystemUser, ensure_notebook_env, is_root, system_user

TEST_USER_NAMES = ("mss-alice", "mss-bob", "mss-carol")
# Fresh users are drawn from one pool per machine (mss-u01, mss-u02, ...): created with useradd
# on first use, reused by later sessions. Each session's homes are new, so a name is fresh.
FRESH_USER_PREFIX = "mss-u"


def require_root() -> None:
    if not is_root():
        pytest.skip("needs root: notebooks run as other system users (useradd, setuid)")


@pytest.fixture(scope="session")
def notebook_env() -> Path:
    """Bin directory of a notebook venv every test user can execute (jupyterhub-singleuser)."""
    require_root()
    return ensure_notebook_env()


@pytest.fixture(scope="session")
def proxy() -> str:
    """configurable-http-proxy, which every hub needs."""
    path = shutil.which("configurable-http-proxy")
    if not path:
        pytest.fail("configurable-http-proxy not on PATH (npm install -g configurable-http-proxy)")
    return path


@pytest.fixture(scope="session")
def homes() -> Iterator[Path]:
    """The people's home directories on "shared storage": ``homes / name``, owned by each.

    Outside pytest's tmp_path, whose parents are private to root: the users must reach them.
    """
    base = Path(tempfile.mkdtemp(prefix="mesosspawner-homes-"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _home(homes: Path, user: SystemUser) -> SystemUser:
    d = homes / user.name
    d.mkdir(exist_ok=True)
    os.chown(d, user.uid, user.gid)
    return user


@pytest.fixture(scope="session")
def test_users(homes: Path) -> list[SystemUser]:
    """Three fixed system users (mss-alice, mss-bob, mss-carol), each with a home in ``homes``."""
    require_root()
    return [_home(homes, system_user(name)) for name in TEST_USER_NAMES]


@pytest.fixture(scope="session")
def _fresh_names() -> Iterator[str]:
    return (f"{FRESH_USER_PREFIX}{n:02d}" for n in itertools.count(1))


@pytest.fixture
async def new_user(
    request: pytest.FixtureRequest, homes: Path, _fresh_names: Iterator[str]
) -> AsyncIterator[Callable]:
    """``await new_user()``: a system user no other test of this session has used, with a
    home in ``homes``; a user of the test's ``hub`` too, when it has one."""
    require_root()
    hub: Hub | None = request.getfixturevalue("hub") if "hub" in request.fixturenames else None
    made: list[SystemUser] = []

    async def make() -> SystemUser:
        user = _home(homes, system_user(next(_fresh_names)))
        if hub is not None:
            await hub.create_user(user.name)
        made.append(user)
        return user

    yield make
    if hub is not None and hub.running:
        # Stop what the test left running so the shared cluster keeps its room; the hub kills
        # the tasks in the background while the next test begins.
        for user in made:
            model = await hub.user_model(user.name)
            for name in model.get("servers") or {}:
                await hub.api("DELETE", hub._server_path(user.name, name))


@pytest.fixture
async def user(new_user: Callable) -> SystemUser:
    """One fresh user (see ``new_user``)."""
    return await new_user()


class Hubs:
    """Makes Hub objects in a directory; ``close()`` stops them, their proxies and notebooks."""

    def __init__(self, root: Path, notebook_bin: Path) -> None:
        self.root = root
        self.notebook_bin = notebook_bin
        self.hubs: list[Hub] = []

    def __call__(self, extra_config: str = "", **kwargs) -> Hub:
        kwargs.setdefault("notebook_bin", self.notebook_bin)
        hub = Hub(self.root / f"hub{len(self.hubs)}", extra_config=extra_config, **kwargs)
        self.hubs.append(hub)
        return hub

    def close(self) -> None:
        for hub in reversed(self.hubs):
            hub.cleanup()


@pytest.fixture
def hub_factory(tmp_path: Path, notebook_env: Path, proxy: str) -> Iterator[Hubs]:
    """``hub_factory(extra_config="", **Hub kwargs)``: a hub this test owns."""
    hubs = Hubs(tmp_path, notebook_env)
    yield hubs
    hubs.close()


@pytest.fixture(scope="module")
def module_hub_factory(
    tmp_path_factory: pytest.TempPathFactory, notebook_env: Path, proxy: str
) -> Iterator[Hubs]:
    """``module_hub_factory(extra_config="", **Hub kwargs)``: a hub the module's tests share."""
    hubs = Hubs(tmp_path_factory.mktemp("hubs"), notebook_env)
    yield hubs
    hubs.close()
