"""A real ZooKeeper (Debian ``zookeeper``) on a free loopback port, for tests and benchmarks.

Each server gets its own directory holding ``zoo.cfg``, the data, the log and the pid file, so
parallel test sessions never share state. The pytest fixtures are in ``tests/services/zookeeper``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mesosspawner.testing.net import free_port

if TYPE_CHECKING:
    from kazoo.client import KazooClient

ZK_SERVER = Path("/usr/share/zookeeper/bin/zkServer.sh")


class ZooKeeperUnavailable(RuntimeError):
    """ZooKeeper is not installed and cannot be (not root)."""


def why_unavailable() -> str | None:
    """The reason ZooKeeper cannot run here, or None when it can."""
    if ZK_SERVER.exists():
        return None
    if os.geteuid() != 0:
        return (
            f"ZooKeeper is not installed ({ZK_SERVER} missing; Debian package zookeeper needs root)"
        )
    return None


@dataclass
class ZooKeeper:
    """A running server: ``hosts`` is the kazoo connect string ``127.0.0.1:PORT``."""

    port: int
    directory: Path

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.directory / "zoo.cfg"

    @property
    def pid_file(self) -> Path:
        return self.directory / "zk.pid"

    def url(self, path: str = "/mesos") -> str:
        """``zk://127.0.0.1:PORT/path``, the form Mesos masters and frameworks take."""
        return f"zk://{self.hosts}/{path.lstrip('/')}"

    def ruok(self, timeout: float = 2.0) -> bool:
        """True when the server answers ZooKeeper's ``ruok`` four-letter word with ``imok``."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
                sock.sendall(b"ruok")
                return sock.recv(16) == b"imok"
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server; SIGKILL it if ``zkServer.sh stop`` left it running."""
        pid = _read_pid(self.pid_file)
        subprocess.run(
            [str(ZK_SERVER), "stop", str(self.config)],
            env=_env(self.directory),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
        if pid is not None and not _wait_gone(pid, 10.0):
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid, 5.0)


def unique_path(prefix: str = "test") -> str:
    """A znode path no other test uses, so tests can share one server."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in prefix)[:60]
    return f"/mesosspawner-tests/{safe}-{uuid.uuid4().hex[:10]}"


def open_parents(url: str, timeout: float = 60.0) -> None:
    """Create the parents of a ``zk://`` URL's path, open to all, if missing.

    Masters with a digest create every missing znode of their path readable by all and writable
    only by them, parents included: on a server the tests share, ``/mesosspawner-tests`` made
    that way would lock every other test out of it.
    """
    rest = url[len("zk://") :]
    hosts, _, path = rest.rsplit("@", 1)[-1].partition("/")
    parent = "/" + path.strip("/").rsplit("/", 1)[0] if "/" in path.strip("/") else ""
    if not parent:
        return
    with _session(hosts, timeout) as client:
        client.ensure_path(parent)


@contextlib.contextmanager
def _session(hosts: str, timeout: float) -> Iterator[KazooClient]:
    """A kazoo session, retrying the connection until `timeout`: one attempt gives up after the
    session timeout (15 s), and one first attempt on a busy CI machine was seen to get no answer."""
    from kazoo.client import KazooClient

    retry = {"max_tries": -1, "delay": 0.2, "max_delay": 2.0}
    client = KazooClient(hosts=hosts, timeout=15.0, connection_retry=retry)
    try:
        client.start(timeout)
        yield client
    finally:
        client.stop()
        client.close()


def start_zookeeper(directory: Path, timeout: float = 60.0, attempts: int = 3) -> ZooKeeper:
    """Start a standalone server in *directory* and wait until it answers ``ruok``.

    The port is probed free first; another process may take it before ZooKeeper binds it, so a
    server that fails to come up is retried on a new port.
    """
    if not ZK_SERVER.exists():
        raise ZooKeeperUnavailable(
            why_unavailable() or f"{ZK_SERVER} missing: run scripts/setup.sh"
        )
    last_error = ""
    for attempt in range(attempts):
        zk = ZooKeeper(port=free_port(), directory=directory / f"zk-{attempt}")
        (zk.directory / "data").mkdir(parents=True)
        zk.config.write_text(
            f"dataDir={zk.directory / 'data'}\n"
            f"clientPort={zk.port}\n"
            "clientPortAddress=127.0.0.1\n"
            "tickTime=2000\n"
            "initLimit=10\n"
            "syncLimit=5\n"
            "maxClientCnxns=0\n"
            "admin.enableServer=false\n"
            "4lw.commands.whitelist=ruok\n"
            # A test server's data dies with it: no fsync of each transaction, so a session is
            # not held up behind the disk writes of Docker builds and image pushes.
            "forceSync=no\n"
            "preAllocSize=1024\n"
        )
        started = subprocess.run(
            [str(ZK_SERVER), "start", str(zk.config)],
            env=_env(zk.directory),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if zk.ruok(timeout=1.0) and _opens_a_session(zk, deadline):
                return zk
            pid = _read_pid(zk.pid_file)
            if pid is not None and not _alive(pid):
                break
            time.sleep(0.2)
        last_error = f"port {zk.port}: {started.stdout}{started.stderr}"
        zk.stop()
    raise RuntimeError(
        f"ZooKeeper did not answer ruok after {attempts} attempts in {directory}:\n{last_error}"
    )


def _opens_a_session(zk: ZooKeeper, deadline: float) -> bool:
    """``imok`` says the server process runs; a session says it serves clients."""
    from kazoo.handlers.threading import KazooTimeoutError

    try:
        with _session(zk.hosts, max(1.0, deadline - time.monotonic())) as client:
            client.get("/")
    except KazooTimeoutError:
        return False
    return True


def _env(directory: Path) -> dict[str, str]:
    logs = directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "ZOO_LOG_DIR": str(logs),
        "ZOOPIDFILE": str(directory / "zk.pid"),
        # A test server needs little memory; the JVM default takes a quarter of the machine.
        "SERVER_JVMFLAGS": "-Xmx256m",
    }


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


# ---------------------------------------------------------------- pytest fixtures
