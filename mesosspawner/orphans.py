"""Orphans: active tasks of this hub's framework that no spawner claims are killed after a grace
period (a hub that crashed mid-spawn, or a server deleted while its agent was away).

``OrphanKiller`` is a part of ``MesosFramework`` (its mixin): it reads ``tasks`` and ``config``
and kills through the framework's ``kill``, in a background task the framework owns.
"""

from __future__ import annotations

import asyncio

from .naming import is_own_task


class OrphanKiller:
    """Schedules and runs the orphan check (mixed into MesosFramework)."""

    def _schedule_orphan_check(self) -> None:
        if not self.config.orphan_kill or self._orphan_timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._orphan_timer = loop.call_later(
            self.config.orphan_grace_seconds,
            lambda: self._spawn(self._kill_orphans()),
        )

    async def _kill_orphans(self) -> None:
        self._orphan_timer = None
        kills = []
        for record in list(self.tasks.values()):
            if record.claimed or not record.active:
                continue
            if not is_own_task(record.task_id, self.config.hub_id):  # either naming scheme
                continue
            self.log.warning(
                "Killing orphan task %s on agent %s: no spawner of this hub claims it",
                record.task_id,
                record.hostname or record.agent_id,
            )
            kills.append(self.kill(record.task_id))
        # Together: one agent that never answers must not hold up the kills on the others.
        await asyncio.gather(*kills)
