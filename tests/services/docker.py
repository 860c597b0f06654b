"""Docker engine, debootstrap base image and a loopback registry for the test suite.

Base images cannot be pulled on this machine, so the suite imports one from a ``debootstrap``
root filesystem, and pushes to Debian's ``docker-registry`` on 127.0.0.1. The engine uses the
default socket and data root, so images built in one run are cached for the next; an engine
that already answers is reused and never stopped by us.

Importable helpers (for scripts) and pytest fixtures (re-exported by ``tests/conftest.py``):
``docker_engine`` (session: a ``DockerEngine``), ``base_image`` (session: image name),
``registry`` (session: ``"127.0.0.1:PORT"``), ``notebook_image`` (session: the base notebook
image built on ``base_image`` and pushed, ``"127.0.0.1:PORT/mesosspawner/base-notebook:HASH"``)
and ``auth_registry`` (session: a second registry that refuses anonymous reads and pushes:
htpasswd with bcrypt, one login each for the images service, CI and the agents).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mesosspawner.testing.net import LOCK_DIR
from mesosspawner.testing.registry import Registry, start_registry
from mesosspawner.testing.registry import terminate as _terminate

DOCKER_SOCKET = "/var/run/docker.sock"
DOCKER_HOST = f"unix://{DOCKER_SOCKET}"
STORAGE_DRIVERS = ("overlay2", "vfs")
BASE_IMAGE_NAME = "mesosspawner-test/bookworm-base:1"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
REPO_ROOT = Path(__file__).resolve().parents[2]


class EngineUnavailable(RuntimeError):
    """The Docker engine cannot run on this machine (not root, or not installed)."""


@dataclass
class DockerEngine:
    host: str
    started_here: bool
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    _users_lock: object | None = field(default=None, repr=False)

    def client(self):
        import docker

        return docker.DockerClient(base_url=self.host, version="auto", timeout=600)


@contextlib.contextmanager
def _flock(name: str, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_DIR / name, "a") as fh:
        fcntl.flock(fh, mode)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def engine_answers(host: str = DOCKER_HOST, timeout: float = 5.0) -> bool:
    """True when a Docker engine answers a ping on *host*."""
    import docker

    try:
        client = docker.DockerClient(base_url=host, version="auto", timeout=timeout)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


def _why_engine_cannot_run() -> str | None:
    if os.geteuid() != 0:
        return "dockerd needs root and no Docker engine answers at " + DOCKER_HOST
    if shutil.which("dockerd") is None:
        return "dockerd is not installed (Debian package docker.io) and no engine answers"
    return None


def start_engine(log_dir: Path, timeout: float = 90.0) -> DockerEngine:
    """Reuse the engine on the default socket, or start dockerd in its own session (setsid).

    The storage driver is overlay2 when this kernel mounts it, else vfs: on vfs every container
    start copies the whole image (measured here: 45-200 s for the notebook image against ~1 s on
    overlay2). Every user holds a shared lock on ``engine-users`` while it uses the engine, so the
    starter's teardown can tell whether another test session still needs it.
    """
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    users = open(LOCK_DIR / "engine-users", "a")  # noqa: SIM115 - held until stop_engine
    fcntl.flock(users, fcntl.LOCK_SH)
    with _flock("engine-start"):
        if engine_answers():
            return DockerEngine(host=DOCKER_HOST, started_here=False, _users_lock=users)
        reason = _why_engine_cannot_run()
        if reason:
            users.close()
            raise EngineUnavailable(reason)
        log_dir.mkdir(parents=True, exist_ok=True)
        errors = []
        for driver in STORAGE_DRIVERS:
            try:
                proc, log_path = _start_dockerd(log_dir, driver, timeout)
            except RuntimeError as exc:
                errors.append(str(exc))
                continue
            return DockerEngine(DOCKER_HOST, True, proc, log_path, users)
        users.close()
        raise RuntimeError("dockerd did not start:\n" + "\n".join(errors))


def _start_dockerd(log_dir: Path, driver: str, timeout: float) -> tuple[subprocess.Popen, Path]:
    log_path = log_dir / f"dockerd-{driver}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            ["dockerd", f"--storage-driver={driver}", f"--host={DOCKER_HOST}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while not engine_answers(timeout=2.0):
        if proc.poll() is not None or time.monotonic() > deadline:
            _terminate(proc, 20)
            tail = log_path.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"dockerd --storage-driver={driver} failed ({log_path}):\n{tail}")
        time.sleep(0.3)
    return proc, log_path


def stop_engine(engine: DockerEngine) -> None:
    """Stop dockerd if this session started it and no other test session still uses it.

    A reused engine is never stopped; a started one that another session still uses is left
    running (that session's own set-up did not start it, so nobody stops it: documented cost).
    """
    users = engine._users_lock
    if users is None:
        return
    try:
        if not engine.started_here or engine.proc is None:
            return
        fcntl.flock(users, fcntl.LOCK_UN)
        try:
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        with _flock("engine-start"):
            _terminate(engine.proc, 30)
    finally:
        users.close()


def container_names(client) -> list[str]:
    """Every container's name, read in one listing. The engine is shared by tests whose
    containers come and go: ``containers.list`` inspects each one it lists and fails when one
    is removed in between; this never inspects."""
    return [n.lstrip("/") for c in client.api.containers(all=True) for n in c.get("Names") or ()]


def find_container(client, match):
    """The first container whose listing entry (``Names``, ``Labels``, ``Id``) ``match``
    accepts, inspected alone (see ``container_names``); None if none does."""
    for entry in client.api.containers(all=True):
        if match(entry):
            return client.containers.get(entry["Id"])
    return None


def image_exists(client, name: str) -> bool:
    import docker

    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_base_image(
    client,
    name: str = BASE_IMAGE_NAME,
    suite: str = DEBIAN_SUITE,
    mirror: str = DEBIAN_MIRROR,
) -> str:
    """Import a ``debootstrap --variant=minbase`` root as *name*, unless it already exists.

    The host's CA bundle goes to ``/etc/ssl/host-ca-bundle.crt`` with ``PIP_CERT`` pointing at it:
    this machine reaches PyPI through a TLS proxy signed by that CA, and Debian's
    ``ca-certificates`` rewrites the usual path. A test set-up concern, not part of the images.
    """
    with _flock("base-image"):
        if image_exists(client, name):
            return name
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is not installed: apt-get install debootstrap")
        with tempfile.TemporaryDirectory(prefix="debootstrap-") as tmp:
            root = Path(tmp) / "root"
            subprocess.run(
                ["debootstrap", "--variant=minbase", suite, str(root), mirror],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            (root / "etc/ssl").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HOST_CA_BUNDLE, root / "etc/ssl/host-ca-bundle.crt")
            tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
            subprocess.run(
                [
                    "docker",
                    "--host",
                    DOCKER_HOST,
                    "import",
                    "-c",
                    "ENV PIP_CERT=/etc/ssl/host-ca-bundle.crt",
                    "-",
                    name,
                ],
                stdin=tar.stdout,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            tar.stdout.close()
            if tar.wait() != 0:
                raise RuntimeError(f"tar of the debootstrap root {root} failed")
    return name


def build_notebook_image(client, base_image: str, registry: str) -> str:
    """Build (or reuse by content hash) and push base-notebook; return its registry reference.

    The reference is then untagged in the engine (the ``mesosspawner/base-notebook:HASH`` cache
    tag keeps the layers), so the first task that uses it really pulls it from the registry.
    """
    from mesosspawner.images import lab as images

    with _flock("notebook-image"):  # parallel sessions build it once; the next finds it cached
        results = images.build_and_push(
            client,
            docker_dir=REPO_ROOT / "docker",
            registry=registry,
            only=["base-notebook"],
            build_args={"BASE_IMAGE": base_image},
            push=True,
        )
    result = results["base-notebook"]
    if result.pushed:  # only by its pusher: another test process may be using it by now
        with contextlib.suppress(Exception):
            client.images.remove(result.ref)
    return result.ref


# ---------------------------------------------------------------- pytest fixtures


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory) -> Iterator[DockerEngine]:
    try:
        engine = start_engine(tmp_path_factory.mktemp("dockerd"))
    except EngineUnavailable as exc:
        pytest.skip(f"Docker engine cannot run here: {exc}")
    try:
        yield engine
    finally:
        stop_engine(engine)


@pytest.fixture(scope="session")
def docker_client(docker_engine):
    client = docker_engine.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    return ensure_base_image(docker_client)


def session_shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory all pytest-xdist workers of this session share (their common temp root);
    the session's own temp directory without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def shared_registry(directory: Path, authenticated: bool = False) -> Iterator[Registry]:
    """One registry for every worker of a session: the first starts it (its address, pid and
    logins in ``address``, mode 0600), each holds a shared lock on ``users`` while it uses it,
    and the last to leave stops it. An image pushed once is then in the registry for all of
    them, and a push of an image on the same base only mounts the base's layers: each first
    push of a 700 MB base to a registry of its own is a gzip of every layer."""
    directory.mkdir(parents=True, exist_ok=True)
    users = open(directory / "users", "a")  # noqa: SIM115 - held while in use
    fcntl.flock(users, fcntl.LOCK_SH)
    try:
        with open(directory / "start.lock", "a") as start:
            fcntl.flock(start, fcntl.LOCK_EX)
            found = _registry_of(directory)
            if found is None:
                reg = start_registry(directory / "registry", authenticated=authenticated)
                _save_registry(directory, reg)
            else:
                reg, _ = found
        yield reg
    finally:
        fcntl.flock(users, fcntl.LOCK_UN)
        try:
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # another worker still uses it: the last one stops it
        else:
            found = _registry_of(directory)
            if found is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(found[1], signal.SIGTERM)
            (directory / "address").unlink(missing_ok=True)
        users.close()


def _save_registry(directory: Path, reg: Registry) -> None:
    info = {
        "address": reg.address,
        "pid": reg.proc.pid,
        "root": str(reg.root),
        "log": str(reg.log_path),
        "logins": {name: c.password for name, c in reg.logins.items()},
    }
    path = directory / "address"
    path.touch(mode=0o600)
    path.write_text(json.dumps(info))


def _registry_of(directory: Path) -> tuple[Registry, int] | None:
    """The session's registry and its pid, when it runs and answers (401 included: it needs a
    login). Its ``proc`` is None: the worker that started it holds that."""
    from mesosspawner.images.registry import Credentials

    try:
        info = json.loads((directory / "address").read_text())
    except (OSError, ValueError):
        return None
    try:
        with urllib.request.urlopen(f"http://{info['address']}/v2/", timeout=2) as resp:
            answers = resp.status == 200
    except urllib.error.HTTPError as exc:
        answers = exc.code == 401 and bool(info["logins"])
    except (urllib.error.URLError, OSError):
        answers = False
    if not answers:
        return None
    logins = {name: Credentials(name, pw) for name, pw in info["logins"].items()}
    reg = Registry(info["address"], None, Path(info["root"]), Path(info["log"]), logins)
    return reg, info["pid"]


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> Iterator[str]:
    """``127.0.0.1:PORT`` of the session's loopback registry (shared by xdist workers)."""
    with shared_registry(session_shared_dir(tmp_path_factory) / "registry") as reg:
        yield reg.address


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory) -> Iterator[Registry]:
    """The session's registry that needs a login for everything (htpasswd, bcrypt), shared by
    xdist workers: ``.logins`` has "images-service" and "ci" (who push) and "agents" (who
    pull); htpasswd cannot tell them apart, so keeping the agents' login pull-only is the
    operator's part."""
    directory = session_shared_dir(tmp_path_factory) / "auth-registry"
    with shared_registry(directory, authenticated=True) as reg:
        yield reg


@pytest.fixture(scope="session")
def notebook_image(docker_client, base_image, registry) -> str:
    """The base notebook image, built once (by content hash) and pushed; not in the engine
    under this reference, so a task that uses it pulls it (``pulled_notebook_image`` if not)."""
    return build_notebook_image(docker_client, base_image, registry)


@pytest.fixture
def pulled_notebook_image(notebook_image, docker_client) -> str:
    """``notebook_image``, pulled into the engine for tests that run containers from it."""
    if not image_exists(docker_client, notebook_image):
        repo, _, tag = notebook_image.rpartition(":")
        docker_client.images.pull(repo, tag=tag)
    return notebook_image


@pytest.fixture(scope="session")
def hub_image(docker_client, base_image) -> str:
    """The hub image (``docker/hub``), built once per content hash of its context (the package
    source is in it) by whichever test process gets here first."""
    from mesosspawner.images import lab as images

    with _flock("hub-image"):
        built = images.build_and_push(
            docker_client,
            REPO_ROOT / "docker",
            None,
            only=["hub"],
            build_args={"BASE_IMAGE": base_image},
        )
    return built["hub"].ref
