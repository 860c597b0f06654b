"""Loopback ports for test services, without a race between choosing a port and binding it.

A port found by binding port 0 is free only until the socket closes: until the service binds it,
the kernel may hand the same port to any process that binds port 0 (a Jupyter kernel, a Spark
driver, another test's hub). A hub's proxy then failed with EADDRINUSE, kept running without its
API, and the hub read a stranger's 404 from ``/api/routes`` and exited. So ports come from a block
below the kernel's ephemeral range, which the kernel never hands out, and which this process
holds with a lock file (other test processes take other blocks) for its whole life.
"""

from __future__ import annotations

import fcntl
import itertools
import random
import socket
import threading
from pathlib import Path
from typing import IO

LOCK_DIR = Path("/tmp/mesosspawner-test-locks")
SERVICE_PORTS = range(10000, 20000)  # agents' offered ports are 20000-29999 (tests/services)
BLOCK_SIZE = 200

_lock = threading.Lock()
_block: tuple[IO, itertools.cycle] | None = None  # the held lock file and the block's ports


def _ephemeral_range() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default


def _claim_block() -> tuple[IO, itertools.cycle] | None:
    """Lock one block of SERVICE_PORTS no other process holds; None when there is none, or
    when this machine's ephemeral range overlaps them."""
    ephemeral = _ephemeral_range()
    if ephemeral.start < SERVICE_PORTS.stop and SERVICE_PORTS.start < ephemeral.stop:
        return None
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    bases = list(range(SERVICE_PORTS.start, SERVICE_PORTS.stop, BLOCK_SIZE))
    random.shuffle(bases)
    for base in bases:
        handle = open(LOCK_DIR / f"service-ports-{base}", "a")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        ports = list(range(base, base + BLOCK_SIZE))
        start = random.randrange(BLOCK_SIZE)
        return handle, itertools.cycle(ports[start:] + ports[:start])
    return None


def _unbound(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
        return True


def _any_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port() -> int:
    """A TCP port that nothing listens on and that no other process will be given meanwhile.

    Falls back to a kernel-chosen port when no block can be held (then the old race remains)."""
    global _block
    with _lock:
        if _block is None:
            _block = _claim_block()
        if _block is None:
            return _any_port()
        _, ports = _block
        for _ in range(BLOCK_SIZE):
            port = next(ports)
            if _unbound(port):
                return port
    return _any_port()
