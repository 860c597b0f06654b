"""Tear down the Spark frameworks notebooks start: when a notebook stops, and any whose notebook
is gone (an orphan: a notebook killed behind the hub's back, or a driver configured with a
failover timeout that keeps its framework registered after the driver died).

The I/O shell around ``spark``, which decides which framework is whose. ``SparkCleanup`` is owned
by ``MesosFramework`` (``fw.spark``) and speaks to the master only through the framework's
scheduler client: it reads the master's frameworks (``get_json("/master/frameworks")``) and tears
down through the master's operator API (``operator_call``: ``TEARDOWN``, after which the master
removes the framework and its agents kill its executors), so the leader, credentials and TLS are
the hub's own (the ACL ``teardown_frameworks`` must allow the hub's principal on a secure
cluster).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from . import spark
from .mesos.client import MesosError
from .mesos.states import TERMINAL_STATES

log = logging.getLogger("mesosspawner.spark")

ReadMaster = Callable[[str, float], Awaitable[object]]  # SchedulerClient.get_json
OperatorCall = Callable[[dict, float], Awaitable[object]]  # SchedulerClient.operator_call


class CleanupError(Exception):
    """The master could not be read or did not tear a framework down; the message says why."""


class SparkCleanup:
    """Finds and tears down the Spark frameworks of one hub's notebooks."""

    def __init__(
        self,
        read_master: ReadMaster,
        operator_call: OperatorCall,
        prefix: str,
        known_state: Callable[[str], str | None] = lambda task_id: None,
        logger: logging.Logger | None = None,
    ) -> None:
        self._read_master = read_master
        self._operator_call = operator_call
        self.prefix = prefix  # the hub's task-id prefix: only its notebooks' frameworks count
        self.known_state = known_state  # the hub's own last word on a notebook task's state
        self.log = logger or log
        self._loop_task: asyncio.Task | None = None
        self._missing: dict[str, int] = {}  # framework id -> sweeps its notebook was unknown
        self._background: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ master I/O

    async def frameworks(self, timeout: float = 10.0) -> list[dict]:
        """Every framework registered with the master, with its tasks."""
        for path in ("/master/frameworks", "/master/state"):
            try:
                answer = await self._read_master(path, timeout)
            except (MesosError, TimeoutError, OSError) as e:
                raise CleanupError(f"GET {path} from the Mesos master: {e}") from None
            if answer is None:  # not served (404): older masters and localmesos
                continue
            if not isinstance(answer, dict):
                raise CleanupError(f"GET {path} from the Mesos master: not an object: {answer!r}")
            return list(answer.get("frameworks") or [])
        raise CleanupError("the Mesos master serves neither /master/frameworks nor /master/state")

    async def teardown(self, framework_id: str, why: str, timeout: float = 10.0) -> None:
        call = {"type": "TEARDOWN", "teardown": {"framework_id": {"value": framework_id}}}
        try:
            await self._operator_call(call, timeout)
        except (MesosError, TimeoutError, OSError) as e:
            raise CleanupError(
                f"TEARDOWN of Spark framework {framework_id}: {e} (a secure master needs the"
                " teardown_frameworks ACL for the hub's principal)"
            ) from None
        self.log.info("Tore down Spark framework %s: %s", framework_id, why)

    # ------------------------------------------------------------------ what the spawner asks

    async def stop_notebook(
        self, task_id: str, driver: str | None = None, timeout: float = 30.0
    ) -> list[str]:
        """Tear down every Spark framework the notebook ``task_id`` started (``driver``: its
        driver's libprocess address) and wait until the master lists none; their ids."""
        deadline = time.monotonic() + timeout
        done: list[str] = []
        while True:
            ids = spark.frameworks_of(await self.frameworks(), task_id, driver)
            if not ids:
                return done
            if time.monotonic() > deadline:
                raise CleanupError(
                    f"Spark frameworks {', '.join(ids)} of notebook {task_id} are still"
                    f" registered {timeout:g} s after their teardown"
                )
            for framework_id in ids:
                if framework_id not in done:
                    await self.teardown(framework_id, f"its notebook {task_id} stopped")
                    done.append(framework_id)
            await asyncio.sleep(0.5)

    def stop_notebook_soon(self, task_id: str, driver: str | None = None) -> None:
        """``stop_notebook`` in the background (a notebook found dead by a poll), owned: kept
        until done, its failure logged, cancelled by ``stop()``."""
        task = asyncio.ensure_future(self.stop_notebook(task_id, driver))
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.warning("Spark frameworks not torn down: %s", task.exception())

    async def sweep(self) -> list[str]:
        """Tear down the Spark frameworks whose notebook no longer runs; their ids.

        A notebook the master reports as finished (or the hub knows as such) is gone at once.
        One the master does not list at all (its record pruned, or a new leading master that has
        not heard from every agent yet) must stay unlisted for two sweeps in a row first.
        """
        found = spark.orphans(await self.frameworks(), self.prefix)
        done = []
        self._missing = {k: v for k, v in self._missing.items() if k in {f for f, *_ in found}}
        for framework_id, task_id, finished in found:
            if not finished and self.known_state(task_id) not in TERMINAL_STATES:
                self._missing[framework_id] = self._missing.get(framework_id, 0) + 1
                if self._missing[framework_id] < 2:
                    continue
            try:
                await self.teardown(framework_id, f"orphan: its notebook {task_id} is gone")
            except CleanupError as e:
                self.log.warning("%s", e)
                continue
            self._missing.pop(framework_id, None)
            done.append(framework_id)
        return done

    def start(self, interval: float) -> None:
        """Sweep every ``interval`` seconds in the background (once per hub; 0: never)."""
        if interval <= 0 or (self._loop_task is not None and not self._loop_task.done()):
            return
        self._loop_task = asyncio.ensure_future(self._sweep_periodically(interval))

    async def _sweep_periodically(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except (CleanupError, ValueError) as e:
                self.log.warning("Spark framework sweep failed: %s", e)

    def stop(self) -> None:
        """Stop sweeping and drop teardowns still in flight (the framework is stopping)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            self._loop_task = None
        for task in list(self._background):
            task.cancel()
