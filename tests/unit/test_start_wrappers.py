"""The start wrappers that take a task's secrets from its one-time env file: the fixed script of
plain command tasks (``taskinfo.PLAIN_START_SCRIPT``) and the notebook images' start script
(``docker/base-notebook/start-notebook.sh``). Both run here for real, as an unprivileged user
in a sandbox directory, as Mesos would run them: each exports exactly the file's values, deletes
the file before the notebook's command starts, and refuses to start without doing both."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesosspawner.taskinfo import (
    ENV_FILE_NAME,
    ENV_FILE_VAR,
    PLAIN_START_NAME,
    PLAIN_START_SCRIPT,
    docker_env_file,
)

START_NOTEBOOK = (
    Path(__file__).resolve().parents[2] / "docker" / "base-notebook" / "start-notebook.sh"
)
NOBODY = pwd.getpwnam("nobody")
# Values a shell would mangle if it parsed them: quotes, expansions, globs, separators.
TRICKY = {
    "JUPYTERHUB_API_TOKEN": "0123456789abcdef0123456789abcdef",
    "DB_PASS": "p a s s = 'w\" $(touch /tmp/pwned-by-env) `id` ${HOME} * ; \\n \\",
    "LEADING": "  spaced  ",
    "EMPTY": "",
}
# The notebook's stand-in: proves the file is gone when it runs, then prints its environment.
PROBE = [
    "/usr/bin/python3",  # Debian's: nobody cannot run a Python under /root
    "-c",
    "import json, os, sys;"
    f" sys.exit(9) if os.path.exists(os.path.join(os.environ['MESOS_SANDBOX'], {ENV_FILE_NAME!r}))"
    " else print(json.dumps(dict(os.environ)))",
]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs the wrappers as user nobody")


def _argv(kind: str) -> list[str]:
    if kind == "plain":
        return ["/bin/sh", "-c", PLAIN_START_SCRIPT, PLAIN_START_NAME, *PROBE]
    return ["/bin/bash", str(START_NOTEBOOK), *PROBE]


def _run(kind: str, sandbox: Path, home: Path) -> subprocess.CompletedProcess:
    env = {
        "MESOS_SANDBOX": str(sandbox),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        ENV_FILE_VAR: ENV_FILE_NAME,
        "NB_USER": "nobody",
    }
    return subprocess.run(
        ["setpriv", f"--reuid={NOBODY.pw_uid}", f"--regid={NOBODY.pw_gid}", "--clear-groups"]
        + _argv(kind),
        cwd=sandbox,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def work() -> Iterator[Path]:
    """A directory user nobody can reach (pytest's tmp_path lies under a root-only one)."""
    path = Path(tempfile.mkdtemp(prefix="start-wrappers-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sandbox(work: Path) -> Path:
    box = work / "sandbox"
    box.mkdir(mode=0o750)
    os.chown(box, NOBODY.pw_uid, NOBODY.pw_gid)
    return box


@pytest.fixture
def home(work: Path) -> Path:
    h = work / "home"
    h.mkdir()
    os.chown(h, NOBODY.pw_uid, NOBODY.pw_gid)
    return h


def _plant(sandbox: Path, text: str) -> Path:
    f = sandbox / ENV_FILE_NAME
    f.write_text(text)
    os.chown(f, NOBODY.pw_uid, NOBODY.pw_gid)  # as the fetcher leaves it: the task user's
    return f


@pytest.mark.parametrize("kind", ["plain", "image"])
def test_values_arrive_exactly_and_the_file_is_gone_before_the_notebook_starts(kind, sandbox, home):
    f = _plant(sandbox, docker_env_file(TRICKY))
    done = _run(kind, sandbox, home)
    assert done.returncode == 0, done.stderr
    env = json.loads(done.stdout.splitlines()[-1])
    assert {k: env.get(k) for k in TRICKY} == TRICKY
    assert not f.exists()
    assert not Path("/tmp/pwned-by-env").exists()  # nothing in a value was evaluated
    assert TRICKY["JUPYTERHUB_API_TOKEN"] not in done.stderr


@pytest.mark.parametrize("kind", ["plain", "image"])
def test_a_missing_env_file_stops_the_start(kind, sandbox, home):
    done = _run(kind, sandbox, home)
    assert done.returncode == 66, (done.stdout, done.stderr)
    assert "one-time env file" in done.stderr and "missing" in done.stderr
    assert not done.stdout  # the notebook never ran


@pytest.mark.parametrize("kind", ["plain", "image"])
def test_an_env_file_that_cannot_be_deleted_stops_the_start(kind, sandbox, home):
    f = _plant(sandbox, docker_env_file(TRICKY))
    os.chown(sandbox, 0, 0)  # the sandbox is not the task user's: it cannot delete the file
    sandbox.chmod(0o755)
    done = _run(kind, sandbox, home)
    assert done.returncode == 73, (done.stdout, done.stderr)
    assert "delete" in done.stderr
    assert not done.stdout
    assert f.exists()


@pytest.mark.parametrize("kind", ["plain", "image"])
def test_a_malformed_env_file_stops_the_start(kind, sandbox, home):
    _plant(sandbox, "JUPYTERHUB_API_TOKEN=ok\nnot a variable line\n")
    done = _run(kind, sandbox, home)
    assert done.returncode == 65, (done.stdout, done.stderr)
    assert not done.stdout
