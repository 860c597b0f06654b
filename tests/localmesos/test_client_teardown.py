"""``SchedulerClient.teardown()`` against both masters (issue 19 item 9).

Real Mesos removes the framework and ends its subscription stream BEFORE it answers the TEARDOWN
call with 202; localmesos answers first. A client that closes its call connection when the
stream ends loses that answer, reports the teardown as failed and goes on re-subscribing under
the removed framework id. So: many teardowns in a row, every one answered, the framework gone
from ``/master/state``, and no re-subscription with the old id.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import AsyncHTTPClient

from mesosspawner.localmesos.testing import framework_info
from mesosspawner.mesos.client import EventHandler, SchedulerClient

pytestmark = pytest.mark.timeout(240)

ROUNDS = 10


class Journal(EventHandler):
    def __init__(self) -> None:
        self.subscribed_ids: list[str] = []
        self.errors: list[str] = []
        self.disconnects: list[str] = []

    async def subscribed(self, event) -> None:
        self.subscribed_ids.append(event.framework_id)

    async def error(self, event) -> None:
        self.errors.append(event.message)

    async def disconnected(self, reason: str) -> None:
        self.disconnects.append(reason)


async def _state(backend) -> dict:
    return json.loads((await AsyncHTTPClient().fetch(f"{backend.url}/master/state")).body)


async def test_teardown_is_answered_and_the_framework_is_gone_every_time(backend):
    outcomes = []
    for i in range(ROUNDS):
        journal = Journal()
        client = SchedulerClient(
            backend.url,
            framework_info(name=f"teardown-{i}", failover_timeout=600),
            journal,
            backoff_max=0.5,
            request_timeout=10.0,
        )
        try:
            await client.start()
            await client.wait_subscribed(30)
            fid = client.framework_id
            try:
                await client.teardown()
                outcomes.append("ok")
            except Exception as e:  # noqa: BLE001 - counted and reported below
                outcomes.append(f"{type(e).__name__}: {e}")
            # Give a wrongly re-subscribing client the time to try (its backoff is <= 0.5 s).
            await asyncio.sleep(1.0)
            state = await _state(backend)
            assert fid not in [f["id"] for f in state["frameworks"]], f"round {i}: still there"
            assert fid in [f["id"] for f in state["completed_frameworks"]]
            assert journal.subscribed_ids == [fid], f"round {i}: re-subscribed"
            assert journal.errors == [], f"round {i}: {journal.errors}"
            assert journal.disconnects == [], f"round {i}: {journal.disconnects}"
            assert client.framework_id is None
            assert not client.subscribed
        finally:
            await client.stop()
    assert outcomes == ["ok"] * ROUNDS, outcomes
