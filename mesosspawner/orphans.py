"""Orphans: active tasks of this hub's framework that no spawner claims are killed after a grace
period (a hub that crashed mid-spawn, or a server deleted while its agent was away).

``OrphanReaper`` is owned by ``MesosFramework`` and owns its timer and its running sweep; it is
given the framework's task table to read and the framework's ``kill`` to kill with.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from .naming import is_own_task
from .tasks import TaskRecord


def orphans(tasks: Mapping[str, TaskRecord], hub_id: str) -> list[TaskRecord]:
    """Active tasks of hub ``hub_id`` that no spawner claims, whichever naming scheme launched
    them (pure)."""
    return [
        record
        for record in tasks.values()
        if not record.claimed and record.active and is_own_task(record.task_id, hub_id)
    ]


class OrphanReaper:
    """Schedules the orphan sweep ``grace_seconds`` after being asked, and runs it."""

    def __init__(
        self,
        tasks: Mapping[str, TaskRecord],
        kill: Callable[[str], Awaitable[object]],
        *,
        hub_id: str,
        grace_seconds: float,
        enabled: bool,
        log: logging.Logger,
    ) -> None:
        self._tasks = tasks  # the framework's: read, never written
        self._kill = kill
        self.hub_id = hub_id
        self.grace_seconds = grace_seconds
        self.enabled = enabled
        self.log = log
        self._timer: asyncio.TimerHandle | None = None
        self._sweeps: set[asyncio.Task] = set()

    @property
    def scheduled(self) -> bool:
        return self._timer is not None

    def schedule(self) -> None:
        """Sweep once the grace period has passed (unless a sweep is already due)."""
        if not self.enabled or self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.grace_seconds, self._due)

    def _due(self) -> None:
        self._timer = None
        sweep = asyncio.ensure_future(self.reap())
        self._sweeps.add(sweep)
        sweep.add_done_callback(self._swept)

    def _swept(self, sweep: asyncio.Task) -> None:
        self._sweeps.discard(sweep)
        if not sweep.cancelled() and sweep.exception() is not None:
            self.log.error("Orphan cleanup failed", exc_info=sweep.exception())

    async def reap(self) -> None:
        """Kill every orphan now."""
        kills = []
        for record in orphans(self._tasks, self.hub_id):
            self.log.warning(
                "Killing orphan task %s on agent %s: no spawner of this hub claims it",
                record.task_id,
                record.hostname or record.agent_id,
            )
            kills.append(self._kill(record.task_id))
        # Together: one agent that never answers must not hold up the kills on the others.
        await asyncio.gather(*kills)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for sweep in list(self._sweeps):
            sweep.cancel()
