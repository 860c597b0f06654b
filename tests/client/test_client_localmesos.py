"""The scheduler client against localmesos (in-process): the calls of DESIGN §4 end to end."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from tornado.httpclient import AsyncHTTPClient

from mesosspawner.localmesos.cluster import LocalCluster
from mesosspawner.localmesos.config import from_dict
from mesosspawner.localmesos.testing import command_task, running_cluster
from mesosspawner.mesos.client import MesosError
from mesosspawner.mesos.events import TaskStatus
from tests.services.fakes import Recorder

USER = os.environ.get("USER") or "root"
CLUSTER = {
    "agent": [
        {"hostname": "agent-1", "resources": "cpus:4;mem:4096;disk:10000;ports:[31000-31009]"},
        {"hostname": "agent-2", "resources": "cpus:4;mem:4096;disk:10000;ports:[32000-32009]"},
    ]
}


def framework(name: str, **extra) -> dict:
    return {
        "user": USER,
        "name": name,
        "roles": ["*"],
        "capabilities": [{"type": "MULTI_ROLE"}],
        "failover_timeout": 600.0,
        "checkpoint": True,
        **extra,
    }


@pytest.fixture
async def cluster(tmp_path):
    config = from_dict(CLUSTER, "<client test cluster>")
    async with running_cluster(config, str(tmp_path / "work")) as c:
        yield c


class Scheduler(Recorder):
    """Keeps offers until a test takes them; records updates per task."""

    def __init__(self) -> None:
        super().__init__()
        self.pending_offers: list[dict] = []

    async def offers(self, event):
        self.pending_offers.extend(o.raw for o in event.offers)
        await super().offers(event)

    async def rescind(self, event):
        self.pending_offers = [o for o in self.pending_offers if o["id"]["value"] != event.offer_id]
        await super().rescind(event)

    async def take_offer(self, timeout: float = 10.0) -> dict:
        await self.wait_for(lambda: self.pending_offers, timeout)
        return self.pending_offers.pop(0)

    def states(self, task_id: str) -> list[str]:
        return [s.state for s in self.of("update") if s.task_id == task_id]

    async def wait_state(self, task_id: str, state: str, timeout: float = 15.0) -> TaskStatus:
        await self.wait_for(lambda: state in self.states(task_id), timeout)
        return next(s for s in self.of("update") if s.task_id == task_id and s.state == state)


async def state_of(cluster: LocalCluster, task_id: str) -> str | None:
    """The task's state in the master's /master/state (what a user sees)."""
    response = await AsyncHTTPClient().fetch(f"{cluster.url}/master/state")
    for fw in json.loads(response.body)["frameworks"]:
        for task in fw.get("tasks", []):
            if task["id"] == task_id:
                return task["state"]
    return None


async def test_subscribe_launch_acknowledge_kill(cluster, make_client):
    handler = Scheduler()
    client = make_client(cluster.url, handler, framework("client-e2e"))
    await client.start()
    await client.wait_subscribed(10)
    assert client.framework_id

    offer = await handler.take_offer()
    task = command_task(offer, "sleeper", "sleep 60", cpus=0.1, mem=32)
    await client.launch([offer["id"]["value"]], [task], {"refuse_seconds": 1})
    running = await handler.wait_state("sleeper", "TASK_RUNNING")
    assert running.uuid is not None
    assert await state_of(cluster, "sleeper") == "TASK_RUNNING"

    await client.kill("sleeper", offer["agent_id"]["value"])
    killed = await handler.wait_state("sleeper", "TASK_KILLED")
    assert killed.source != "SOURCE_MASTER"
    # Every agent update was acknowledged: localmesos stops resending, no duplicates arrive.
    await asyncio.sleep(1.5)  # three status retry intervals
    assert handler.states("sleeper").count("TASK_RUNNING") == 1
    assert handler.states("sleeper").count("TASK_KILLED") == 1


async def test_reconcile_explicit_and_implicit(cluster, make_client):
    handler = Scheduler()
    client = make_client(cluster.url, handler, framework("client-reconcile"))
    await client.start()
    await client.wait_subscribed(10)
    offer = await handler.take_offer()
    task = command_task(offer, "long", "sleep 60", cpus=0.1, mem=32)
    await client.launch([offer["id"]["value"]], [task])
    await handler.wait_state("long", "TASK_RUNNING")
    before = len(handler.of("update"))

    await client.reconcile([("long", offer["agent_id"]["value"]), ("ghost", None)])
    await handler.wait_for(lambda: handler.states("ghost"))
    assert handler.states("ghost")[0] in ("TASK_LOST", "TASK_UNKNOWN", "TASK_GONE")
    await handler.wait_for(lambda: handler.states("long").count("TASK_RUNNING") >= 2)
    reconciled = [s for s in handler.of("update")[before:] if s.task_id == "long"]
    assert reconciled[0].reason == "REASON_RECONCILIATION"
    assert reconciled[0].uuid is None  # master-generated: never acknowledged

    count = handler.states("long").count("TASK_RUNNING")
    await client.reconcile()  # implicit: every task the master knows
    await handler.wait_for(lambda: handler.states("long").count("TASK_RUNNING") > count)
    await client.kill("long")


async def test_decline_with_filter_keeps_the_agent_away_until_revive(cluster, make_client):
    handler = Scheduler()
    client = make_client(cluster.url, handler, framework("client-decline"))
    await client.start()
    await client.wait_subscribed(10)
    await handler.wait_for(lambda: len(handler.pending_offers) == 2)
    declined = handler.pending_offers.pop(0)
    agent = declined["agent_id"]["value"]

    await client.decline([declined["id"]["value"]], {"refuse_seconds": 60})
    await asyncio.sleep(1.0)  # many allocation intervals
    assert all(o["agent_id"]["value"] != agent for o in handler.pending_offers)
    later = [o for batch in handler.of("offers")[1:] for o in batch.offers]
    assert all(o.agent_id != agent for o in later)

    await client.revive()
    await handler.wait_for(
        lambda: any(o["agent_id"]["value"] == agent for o in handler.pending_offers)
    )


async def test_rejected_call_raises_mesos_error_with_masters_reason(cluster, make_client):
    handler = Scheduler()
    client = make_client(cluster.url, handler, framework("client-reject"))
    await client.start()
    await client.wait_subscribed(10)
    with pytest.raises(MesosError) as info:
        await client.acknowledge("no-agent", "no-task", "not base64 !!")
    assert info.value.code == 400
    assert "ACKNOWLEDGE" in str(info.value)


async def test_a_raising_handler_does_not_hurt_the_stream_or_the_tasks(cluster, make_client):
    class Clumsy(Scheduler):
        async def update(self, status):
            await super().update(status)
            raise RuntimeError("handler bug")

    handler = Clumsy()
    client = make_client(cluster.url, handler, framework("client-clumsy"))
    await client.start()
    await client.wait_subscribed(10)
    offer = await handler.take_offer()
    task = command_task(offer, "survivor", "sleep 60", cpus=0.1, mem=32)
    await client.launch([offer["id"]["value"]], [task])
    await handler.wait_state("survivor", "TASK_RUNNING")
    await asyncio.sleep(1.5)

    assert client.subscribed
    assert "disconnected" not in handler.names()
    assert await state_of(cluster, "survivor") == "TASK_RUNNING"  # no TEARDOWN, task alive
    assert handler.states("survivor").count("TASK_RUNNING") == 1  # acknowledged despite raising
    await client.kill("survivor")
    await handler.wait_state("survivor", "TASK_KILLED")


async def test_heartbeat_loss_reconnects_under_the_same_framework(cluster, make_client):
    handler = Scheduler()
    client = make_client(cluster.url, handler, framework("client-heartbeat"), heartbeat_misses=2)
    await client.start()
    await client.wait_subscribed(10)
    framework_id = client.framework_id
    offer = await handler.take_offer()
    await client.launch(
        [offer["id"]["value"]], [command_task(offer, "steady", "sleep 60", cpus=0.1, mem=32)]
    )
    await handler.wait_state("steady", "TASK_RUNNING")

    # Freeze the client's side of the stream: the master's heartbeats (0.5 s) stop arriving.
    session = client._session
    session.stream.io_loop.remove_handler(session.stream.fileno())
    await handler.wait_for(lambda: len(handler.of("subscribed")) == 2, timeout=10)

    assert handler.names().count("disconnected") == 1
    assert "heartbeat" in handler.of("disconnected")[0]
    assert client.framework_id == framework_id
    assert await state_of(cluster, "steady") == "TASK_RUNNING"
    await client.kill("steady")
    await handler.wait_state("steady", "TASK_KILLED")
