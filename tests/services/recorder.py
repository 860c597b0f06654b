"""A scheduler-client event handler that records every callback, for the client's tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from mesosspawner.mesos.client import EventHandler

FRAMEWORK = {
    "user": "nobody",
    "name": "client-test",
    "roles": ["*"],
    "capabilities": [{"type": "MULTI_ROLE"}],
    "failover_timeout": 3600.0,
    "checkpoint": True,
}


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
