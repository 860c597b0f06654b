"""A notebook just started: wait for its first answer, or for its task to stop first.

JupyterHub waits for a started server's answer for up to ``http_timeout`` and looks at nothing
else meanwhile: a notebook that dies right after its task runs costs the person that whole
wait, and the spawn request a 500 ("InvalidStateError: Exception is not set.") once
``slow_spawn_timeout`` passes. ``MesosSpawner.start()`` therefore waits here first, so the task's
end reaches the person in seconds, with Mesos's reason.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Protocol

from jupyterhub.utils import wait_for_http_server

from .mesos.states import LIVE_STATES
from .tasks import TaskRecord


class TaskSource(Protocol):
    """What is read of the framework: a task's record, and a wait for its next change."""

    def task(self, task_id: str) -> TaskRecord | None: ...
    async def wait_change(self, task_id: str, timeout: float) -> None: ...


async def or_end(
    fw: TaskSource,
    task_id: str,
    url: str,
    budget: float,
    ssl_context: ssl.SSLContext | None = None,
) -> TaskRecord | None:
    """Wait until ``url`` answers as JupyterHub's own check does (any status below 500), or the
    task stops being live: its record then, else None (answered, or ``budget`` seconds passed
    without either: JupyterHub's own wait takes over)."""
    answered = asyncio.ensure_future(
        wait_for_http_server(url, timeout=budget, ssl_context=ssl_context)
    )
    ended = asyncio.ensure_future(_stopped(fw, task_id))
    try:
        await asyncio.wait([answered, ended], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (answered, ended):
            waiter.cancel()
        await asyncio.gather(answered, ended, return_exceptions=True)
    if ended.done() and not ended.cancelled():
        return ended.result()
    return None


async def _stopped(fw: TaskSource, task_id: str) -> TaskRecord:
    while True:
        record = fw.task(task_id)
        if record is not None and record.state not in LIVE_STATES:
            return record
        await fw.wait_change(task_id, 3600)
