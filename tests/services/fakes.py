"""The test doubles, in one place: what a test stands in for a real part with, and why.

* ``framework_config``: the FrameworkConfig a hub would build (from MesosSpawner's traits).
* ``RecordingClient``: a SchedulerClient that records calls and never talks to a master, for
  driving MesosFramework event by event.
* ``StubFramework``: just enough of MesosFramework for MesosSpawner's start/poll/stop (its
  ``spark`` a ``SparkRecorder``: what the spawner asked of the Spark cleanup).
* ``Recorder``: an EventHandler that records every event, awaitable by condition.
* ``fake_passwd``: accounts (alice, bob, ...) in the hub host's passwd as MesosSpawner looks them
  up, for spawners built without a hub; the e2e tests use real accounts.

Everything else in the suite is real (localmesos, real Mesos, JupyterHub, ZooKeeper, Docker).
"""

from __future__ import annotations

import asyncio
import dataclasses
import pwd
from collections.abc import Callable
from types import SimpleNamespace

from mesosspawner.framework import FrameworkConfig
from mesosspawner.gpuqueue.hubqueue import GpuQueue
from mesosspawner.gpuqueue.policy import QueuePolicy
from mesosspawner.mesos.client import EventHandler
from mesosspawner.stop_notes import StopNotes

# The FrameworkInfo the scheduler client's tests subscribe with.
FRAMEWORK_INFO = {
    "user": "nobody",
    "name": "client-test",
    "roles": ["*"],
    "capabilities": [{"type": "MULTI_ROLE"}],
    "failover_timeout": 3600.0,
    "checkpoint": True,
}


def framework_config(*, master: str, **overrides) -> FrameworkConfig:
    """The trait defaults' FrameworkConfig for ``master``, with ``overrides``; no id file and
    no GPU queue state file unless given (a test must not leave one in the working directory)."""
    from mesosspawner import MesosSpawner

    spawner = MesosSpawner(
        user=SimpleNamespace(name="framework-test", id=0, groups=[]), mesos_master=master
    )
    overrides.setdefault("id_file", None)
    overrides.setdefault("gpu_state_file", None)
    return dataclasses.replace(spawner.framework_config(), **overrides)


async def stop_frameworks(made) -> None:
    """After a test: kill what each framework still runs, then close its stream (tasks would
    otherwise outlive the test until the failover timeout)."""
    for fw in made:
        for record in list(fw.tasks.values()):
            if record.active:
                await fw.kill(record.task_id, timeout=10)
        await fw.stop()


class RecordingClient:
    """Stands in for SchedulerClient: records every call, never talks to a master."""

    def __init__(self, master, framework_info, handler, **kwargs) -> None:
        self.handler = handler
        self.framework_id: str | None = None
        self.subscribed = False
        self.calls: list[tuple[str, object]] = []
        self.master_state: dict[str, object] = {}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.subscribed = False

    async def wait_subscribed(self, timeout: float | None = None) -> None:
        pass

    async def reconcile(self, tasks=None) -> None:
        self.calls.append(("reconcile", sorted(tasks or [])))

    async def launch(self, offer_ids, infos, filters=None) -> None:
        self.calls.append(("launch", [i["task_id"]["value"] for i in infos]))

    async def decline(self, offer_ids, filters=None) -> None:
        self.calls.append(("decline", offer_ids))

    async def kill(self, task_id, agent_id=None) -> None:
        self.calls.append(("kill", task_id))

    async def revive(self, roles=None) -> None:
        self.calls.append(("revive", roles))

    async def suppress(self, roles=None) -> None:
        self.calls.append(("suppress", roles))

    async def answer_inverse_offers(self, accept, inverse_offer_ids, filters=None) -> None:
        self.calls.append(("accept_inverse" if accept else "decline_inverse", inverse_offer_ids))

    async def get_json(self, path, timeout=10.0):
        """The master's operator endpoints: ``master_state`` by path, else not served."""
        self.calls.append(("get_json", path))
        return self.master_state.get(path)

    async def operator_call(self, call, timeout=10.0):
        """The master's operator API: recorded, answered with nothing (202)."""
        self.calls.append(("operator_call", call))

    def of(self, kind: str) -> list:
        return [arg for k, arg in self.calls if k == kind]


class SparkRecorder:
    """Stands in for the framework's SparkCleanup: records what the spawner asks of it."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def start(self, interval: float) -> None:
        self.calls.append(("start", interval))

    async def stop_notebook(self, task_id, driver=None, timeout=30.0) -> list[str]:
        self.calls.append(("stop_notebook", task_id, driver))
        return []

    def stop_notebook_soon(self, task_id, driver=None) -> None:
        self.calls.append(("stop_notebook_soon", task_id, driver))


class StubFramework:
    """Just enough of MesosFramework for start/poll/stop: launches wait until released, or,
    given ``runs`` (a TaskRecord), return it as the launched task at once. ``agents``: what
    ``capacity()`` answers (``placement.AgentCapacity``)."""

    def __init__(self, roles: tuple[str, ...] = ("*",), agents: tuple = ()) -> None:
        self.stops = StopNotes()
        self.launched: list = []
        self.release = asyncio.Event()
        self.totals_known = bool(agents)
        self.config = SimpleNamespace(roles=roles)
        self.runs = None
        self.agents = list(agents)
        self.spark = SparkRecorder()
        self.tasks: dict = {}  # what launch() returned, and what track() was told
        self.abandoned: list[str] = []  # tasks poll() gave up on (no stop() follows)
        # The real queue, with no GPU rules and no state file: what a hub without GPU
        # profiles has.
        self.gpu_queue = GpuQueue(
            QueuePolicy(),
            state_file=None,
            tasks=self.tasks,
            kill=self.kill,
            revive=self._revive,
            note_kill_reason=self.stops.note_kill,
            capacity=lambda: (None, None),
        )

    async def ensure_started(self, timeout=None) -> None:
        pass

    async def refresh_capacity(self, max_age=10.0, timeout=2.0) -> None:
        pass

    def capacity(self) -> list:
        return self.agents

    def quota(self, role: str):
        return None

    def task(self, task_id):
        return self.tasks.get(task_id)

    def track(self, record) -> None:
        self.tasks.setdefault(record.task_id, record)

    async def _revive(self) -> None:
        pass

    async def kill(self, task_id: str, timeout: float = 60.0):
        record = self.tasks.get(task_id)
        if record is not None:
            record.state = "TASK_KILLED"
        return record

    def abandon(self, task_id: str) -> None:
        self.abandoned.append(task_id)

    async def launch(self, req):
        self.launched.append(req)
        if self.runs is not None:
            self.tasks[self.runs.task_id] = self.runs
            return self.runs
        await self.release.wait()
        raise asyncio.CancelledError

    def why_waiting(self, req) -> str:
        return "something"

    async def never_fits(self, request) -> str | None:
        return None

    async def wait_reconciled(self, timeout: float) -> bool:
        return True


class Recorder(EventHandler):
    """Records every callback as (name, typed event), in order; awaitable by condition."""

    def __init__(self, journal: list[str] | None = None) -> None:
        self.events: list[tuple[str, object]] = []
        self.journal = journal if journal is not None else []
        self._changed = asyncio.Event()

    def _add(self, name: str, arg: object) -> None:
        self.events.append((name, arg))
        self._changed.set()

    def names(self) -> list[str]:
        return [n for n, _ in self.events]

    def of(self, name: str) -> list:
        return [a for n, a in self.events if n == name]

    async def wait_for(self, check: Callable[[], object], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not check():
                self._changed.clear()
                await self._changed.wait()

    async def subscribed(self, event):
        self._add("subscribed", event)

    async def offers(self, event):
        self._add("offers", event)

    async def rescind(self, event):
        self._add("rescind", event)

    async def update(self, status):
        self.journal.append(f"handled:{status.task_id}")
        self._add("update", status)

    async def failure(self, event):
        self._add("failure", event)

    async def message(self, event):
        self._add("message", event)

    async def error(self, event):
        self._add("error", event)

    async def disconnected(self, reason):
        self._add("disconnected", reason)


# Accounts of spawner unit tests: ordinary uids (>= min_uid), as on a lab's hub host.
FAKE_ACCOUNTS = {"alice": (1001, 100), "bob": (1002, 100), "carol": (1003, 100)}


def fake_passwd(monkeypatch, accounts: dict[str, tuple[int, int]] | None = None) -> None:
    """MesosSpawner's passwd lookups also find ``accounts`` (name -> (uid, gid))."""
    from mesosspawner import spawner

    known = FAKE_ACCOUNTS if accounts is None else accounts
    real = pwd.getpwnam

    def getpwnam(name: str) -> pwd.struct_passwd:
        if name in known:
            uid, gid = known[name]
            return pwd.struct_passwd((name, "x", uid, gid, "", f"/home/{name}", "/bin/bash"))
        return real(name)

    monkeypatch.setattr(spawner.pwd, "getpwnam", getpwnam)
