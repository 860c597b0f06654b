"""Fixtures for the scheduler client's tests: a fake master and clients that always stop
(the event recorder is ``tests.services.fakes.Recorder``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from mesosspawner.mesos.client import EventHandler, SchedulerClient
from mesosspawner.testing.fake_master import FakeMaster
from tests.services.fakes import FRAMEWORK_INFO


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
        client = SchedulerClient(master, dict(info or FRAMEWORK_INFO), handler, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.stop()
