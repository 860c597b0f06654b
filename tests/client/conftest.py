"""Fixtures for the scheduler client's tests: a fake master and clients that always stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from mesosspawner.mesos.client import EventHandler, SchedulerClient
from tests.client.fake_master import FakeMaster

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


@pytest.fixture
def fake_master() -> Iterator[FakeMaster]:
    master = FakeMaster().start()
    try:
        yield master
    finally:
        master.stop()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., SchedulerClient]]:
    """``make_client(master, handler, **kwargs)``; every client is stopped afterwards."""
    clients: list[SchedulerClient] = []

    def make(master: str, handler: EventHandler, info: dict | None = None, **kwargs):
        kwargs.setdefault("backoff_max", 0.5)
        kwargs.setdefault("request_timeout", 5.0)
        client = SchedulerClient(master, dict(info or FRAMEWORK), handler, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.stop()
