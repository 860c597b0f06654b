"""Maintenance and draining (issue 19 item 6), through a real hub, on localmesos and on real
Mesos 1.11.0 (``mesos_kind``).

An operator schedules maintenance for a machine (``POST /master/maintenance/schedule``): offers
from its agent carry an ``unavailability``, and frameworks with resources there get inverse
offers. The hub answers them (it declines while a notebook runs there: a notebook cannot be
moved) and starts no new notebook on a machine going down within
``maintenance_horizon_seconds``. Then the operator drains the agent (``DRAIN_AGENT``; real Mesos
refuses to drain an agent in a maintenance schedule, so the schedule is cleared first): its
notebook is killed, and its person is told the machine is being drained for maintenance.
"""

from __future__ import annotations

import time

import pytest

from tests.services.cluster import AgentSpec, port_block, release_port_block
from tests.services.e2e import mesos_config, server_gone, spawn_page, start_ready, wait_for


@pytest.fixture
def agents():
    base = port_block()
    # Spread puts a notebook on the agent with the most free cpus: big-1, unless it goes down.
    yield (
        AgentSpec("big-1", f"cpus:3;mem:3072;ports:[{base}-{base + 29}]"),
        AgentSpec("small-1", f"cpus:2;mem:2048;ports:[{base + 30}-{base + 59}]"),
    )
    release_port_block(base)


def window(hostname: str, starts_in: float, lasts: float = 3600) -> dict:
    """A maintenance window for the machine of agent ``hostname`` (all agents here are on
    127.0.0.1; a MachineID names both, as the master matches them)."""
    start = int((time.time() + starts_in) * 1e9)
    return {
        "machine_ids": [{"hostname": hostname, "ip": "127.0.0.1"}],
        "unavailability": {
            "start": {"nanoseconds": start},
            "duration": {"nanoseconds": int(lasts * 1e9)},
        },
    }


async def framework_answers(cluster, hostname: str) -> dict[str, str]:
    """framework id -> ACCEPT/DECLINE, as the master's maintenance status shows its answers to
    the inverse offers for ``hostname``'s machine."""
    code, status = await cluster.operator({"type": "GET_MAINTENANCE_STATUS"})
    assert code == 200, status
    machines = status["get_maintenance_status"]["status"].get("draining_machines", [])
    for machine in machines:
        if machine["id"]["hostname"] == hostname:
            return {s["framework_id"]["value"]: s["status"] for s in machine.get("statuses", [])}
    return {}


async def test_maintenance_keeps_new_notebooks_away_and_a_drain_says_why_it_stopped(
    mesos_kind, clusters, agents, hub_factory, homes, new_user
):
    cluster = clusters(mesos_kind, agents)
    extra = "c.MesosSpawner.poll_interval = 1\nc.MesosSpawner.maintenance_horizon_seconds = 3600"
    hub = await hub_factory(mesos_config(cluster.url, homes, extra)).launch()
    alice, bob = (await new_user()).name, (await new_user()).name
    for user in (alice, bob):
        await hub.create_user(user)
    first = await start_ready(hub, alice)
    assert first["agent_hostname"] == "big-1"
    (framework_id,) = [f["id"] for f in (await cluster.state())["frameworks"] if f["active"]]

    # big-1 goes down in 10 minutes, for an hour: inside the hub's one-hour horizon.
    code, body = await cluster.schedule_maintenance([window("big-1", starts_in=600)])
    assert code == 200, body

    # The hub answers the inverse offer: a notebook runs there, so it declines.
    async def declined() -> bool:
        return (await framework_answers(cluster, "big-1")).get(framework_id) == "DECLINE"

    await wait_for(declined, 30, "the hub to decline the inverse offer for big-1")

    # A new notebook goes to small-1, although big-1 has more room.
    second = await start_ready(hub, bob)
    assert second["agent_hostname"] == "small-1"

    # The operator drains big-1 instead (after clearing the schedule, which real Mesos asks).
    code, body = await cluster.schedule_maintenance([])
    assert code == 200, body
    agent_id = await cluster.agent_id("big-1")
    code, body = await cluster.operator(
        {"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": agent_id}}}
    )
    assert code == 200, body

    async def killed_by_drain() -> bool:
        task = (await cluster.tasks()).get(first["task_id"], {})
        return task.get("state") in ("TASK_KILLED", "TASK_GONE_BY_OPERATOR")

    await wait_for(killed_by_drain, 60, "alice's notebook to be killed by the drain")
    await wait_for(lambda: server_gone(hub, alice), 30, "the hub to notice alice's stopped server")
    page = await spawn_page(hub, alice)
    assert "machine big-1 is being drained for maintenance" in page, page[-3000:]

    # The drained agent is left alone; bob's notebook on small-1 runs on.
    assert (await cluster.task_states())[second["task_id"]] == "TASK_RUNNING"
    agent = next(a for a in await cluster.slaves() if a["hostname"] == "big-1")
    assert agent["active"] is False and agent["drain_info"]["state"] in ("DRAINING", "DRAINED")
