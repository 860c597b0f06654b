"""pymesos as an independent peer of localmesos, and localmesos as a real process.

pymesos (written for real Mesos) runs its scheduler driver on its own thread and calls a
``Scheduler`` from there; ``Peer`` turns those callbacks into a thread-safe queue that a test reads
with a timeout, so no test can hang on a callback that never comes. localmesos runs through its
command line (``python -m mesosspawner.localmesos --config FILE --port N``), exactly as the
demo and an outside user start it; the suites that run against both masters take theirs from
``tests/services/cluster.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pymesos.process
from pymesos import MesosSchedulerDriver, Scheduler

LISTENING = re.compile(r"localmesos master listening on (http://127\.0\.0\.1:(\d+))")
USER = pwd.getpwuid(os.getuid()).pw_name


class PeerError(AssertionError):
    """The awaited behaviour did not happen; the message says what was seen instead."""


# --- localmesos processes --------------------------------------------------------------------


@dataclass
class LocalMesosProcess:
    """A ``mesosspawner-localmesos`` process (a master, or an agent with ``agent`` first)."""

    proc: subprocess.Popen
    log_path: Path
    url: str | None = None  # masters only: http://127.0.0.1:PORT

    @property
    def port(self) -> int:
        assert self.url, "not a master"
        return int(self.url.rsplit(":", 1)[1])

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, the form pymesos takes for a master."""
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """Crash it (SIGKILL): no goodbye to ZooKeeper, agents or frameworks."""
        _signal_group(self.proc, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Stop it gracefully, forcing after a grace period; the process group goes too."""
        if self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        # Tasks a killed agent left behind live in the same process group.
        _signal_group(self.proc, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def start_localmesos(args: list[str], log_path: Path, timeout: float = 30.0) -> LocalMesosProcess:
    """Start ``python -m mesosspawner.localmesos ARGS``; for a master, wait for its ready line."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mesosspawner.localmesos", *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    lm = LocalMesosProcess(proc, log_path)
    if args[:1] == ["agent"]:
        return lm
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            lm.url = match.group(1)
            return lm
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    lm.stop()
    raise PeerError(f"localmesos {args} did not print its ready line:\n{lm.log()}")


def get_json(url: str, timeout: float = 10.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


def wait_until(what: str, check: Callable[[], object], timeout: float = 30.0) -> object:
    """Poll ``check`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            last = check()
            if last:
                return last
        time.sleep(0.2)
    raise PeerError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")


# --- the pymesos peer ------------------------------------------------------------------------


@dataclass
class Event:
    kind: str  # registered, reregistered, disconnected, offer, rescind, update, error, lost
    data: object
    at: float  # time.monotonic() when pymesos delivered it


class Peer(Scheduler):
    """A pymesos ``Scheduler`` that records every callback, in order, for the test thread.

    Callbacks never raise: pymesos tears the framework down when one does.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[Event] = queue.Queue()
        self._pending: list[Event] = []
        self.seen: list[Event] = []
        self.driver_errors: list[object] = []

    def _put(self, kind: str, data: object) -> None:
        self._queue.put(Event(kind, data, time.monotonic()))

    def registered(self, driver, framework_id, master_info):
        self._put("registered", {"framework_id": framework_id, "master_info": master_info})

    def reregistered(self, driver, master_info):
        self._put("reregistered", {"master_info": master_info})

    def disconnected(self, driver):
        self._put("disconnected", None)

    def resourceOffers(self, driver, offers):  # noqa: N802 - pymesos's name
        for offer in offers:
            self._put("offer", offer)

    def offerRescinded(self, driver, offer_id):  # noqa: N802
        self._put("rescind", offer_id)

    def statusUpdate(self, driver, status):  # noqa: N802
        self._put("update", status)

    def slaveLost(self, driver, agent_id):  # noqa: N802
        self._put("lost", agent_id)

    def error(self, driver, message):
        self._put("error", message)

    def next(
        self, kind: str, where: Callable[[object], bool] = lambda _: True, timeout: float = 20.0
    ) -> Event:
        """The first unconsumed event of ``kind`` matching ``where``, waiting up to ``timeout``."""
        for i, event in enumerate(self._pending):
            if event.kind == kind and where(event.data):
                return self._pending.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            if self.driver_errors:
                raise PeerError(f"the pymesos driver thread died: {self.driver_errors[0]!r}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PeerError(
                    f"no {kind} event within {timeout:.0f}s; events so far: "
                    f"{[(e.kind, _brief(e.data)) for e in self.seen]}"
                )
            try:
                event = self._queue.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            self.seen.append(event)
            if event.kind == kind and where(event.data):
                return event
            self._pending.append(event)

    def drain(self, seconds: float) -> list[Event]:
        """Every event (pending and new) that arrives within ``seconds``; consumes them."""
        events, self._pending = self._pending, []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            self.seen.append(event)
            events.append(event)
        return events

    def offers_from(self, hostnames: set[str], timeout: float = 20.0) -> dict[str, dict]:
        """Wait for an offer from each agent in ``hostnames``: {hostname: offer}."""
        got: dict[str, dict] = {}
        while set(got) != hostnames:
            event = self.next(
                "offer", lambda o: o["hostname"] in hostnames - set(got), timeout=timeout
            )
            got[event.data["hostname"]] = event.data
        return got

    def update_for(
        self,
        task_id: str,
        state: str,
        where: Callable[[dict], bool] = lambda _: True,
        timeout: float = 20.0,
    ) -> dict:
        """Wait for an update of ``task_id`` to ``state`` (matching ``where``); fail on another
        terminal state."""
        terminal = {
            "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST",
            "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR",
        }  # fmt: skip

        def matches(status) -> bool:
            return status["task_id"]["value"] == task_id and (
                (status["state"] == state and where(status)) or status["state"] in terminal
            )

        status = self.next("update", matches, timeout=timeout).data
        if status["state"] != state:
            raise PeerError(f"task {task_id} ended {status['state']} instead of {state}: {status}")
        return status


def _brief(data: object) -> object:
    if isinstance(data, dict) and "hostname" in data:
        return data["hostname"]
    if isinstance(data, dict) and "state" in data:
        return (data["task_id"]["value"], data["state"])
    return data


class WithoutGpuCapability(MesosSchedulerDriver):
    """pymesos always declares GPU_RESOURCES when /version says >= 1.0; a framework written for
    CPUs only (what the GPU-withholding rule is about) needs it taken out again."""

    @property
    def framework(self):
        info = super().framework
        caps = [c for c in info.get("capabilities", []) if c["type"] != "GPU_RESOURCES"]
        if caps:
            info["capabilities"] = caps
        else:
            info.pop("capabilities", None)
        return info


def framework_info(name: str, **extra) -> dict:
    return {"user": USER, "name": name, "hostname": "127.0.0.1", **extra}


@contextlib.contextmanager
def run_driver(
    peer: Peer, framework: dict, master: str, *, gpu: bool = True, failover: bool = False
) -> Iterator[object]:
    """Start a pymesos ``MesosSchedulerDriver`` for ``peer``; always stop and join it.

    On exit the driver is stopped without failover, so pymesos sends TEARDOWN and localmesos kills
    the framework's tasks. pymesos interrupts the main thread when its I/O thread dies; in a test
    run that would be a KeyboardInterrupt, so the error is recorded on ``peer`` instead.
    """

    def record_abort() -> None:
        peer.driver_errors.append(pymesos.process._exc_info)
        pymesos.process._exc_info = None

    original = pymesos.process.thread
    pymesos.process.thread = _Interrupter(record_abort)
    # timeout bounds pymesos's blocking HTTP calls and its reconnect deadline (default: a day).
    driver_class = MesosSchedulerDriver if gpu else WithoutGpuCapability
    driver = driver_class(
        peer, framework, master, implicit_acknowledgements=True, failover=failover, timeout=120
    )
    driver.start()
    try:
        yield driver
    finally:
        driver.stop()
        joiner = threading.Thread(target=driver.join, daemon=True)
        joiner.start()
        joiner.join(30)
        pymesos.process.thread = original
        if joiner.is_alive():
            raise PeerError("the pymesos driver thread did not stop within 30 s")


class _Interrupter:
    def __init__(self, fn: Callable[[], None]) -> None:
        self.interrupt_main = fn


# --- offers and tasks as plain data --------------------------------------------------------


def reserved_role(resource: dict) -> str:
    """The role a resource is reserved for ("*" when unreserved), in either offer format."""
    reservations = resource.get("reservations") or []
    if reservations:
        return reservations[-1]["role"]
    return resource.get("role", "*")


def scalar(offer: dict, name: str, role: str | None = None) -> float:
    """Total of scalar ``name`` in ``offer`` (only the part reserved for ``role`` if given)."""
    return sum(
        r["scalar"]["value"]
        for r in offer["resources"]
        if r["name"] == name and (role is None or reserved_role(r) == role)
    )


def command_task(offer: dict, task_id: str, command: str, cpus=0.1, mem=32.0) -> dict:
    """A TaskInfo running ``command`` on the offer's agent with unreserved cpus and mem."""

    def res(name: str, value: float) -> dict:
        r = {"name": name, "type": "SCALAR", "scalar": {"value": value}}
        if "allocation_info" in offer:
            r["allocation_info"] = offer["allocation_info"]
        return r

    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": [res("cpus", cpus), res("mem", mem)],
        "command": {"value": command, "shell": True},
    }
