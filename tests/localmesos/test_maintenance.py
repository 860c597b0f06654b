"""Maintenance schedules, inverse offers and draining (Mesos 1.9+ ``DRAIN_AGENT``), against
both masters: what the operator calls answer, what frameworks are offered and told, and what
a drained agent's tasks report (issue 19 item 6).

Every test changes the master's schedule or an agent's state: each gets a cluster of its own.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from mesosspawner.localmesos.testing import command_task, framework_info
from tests.services.cluster import get_json, post_json

pytestmark = [pytest.mark.timeout(120), pytest.mark.own_cluster]


async def collect(s, seconds: float) -> list[dict]:
    """Every offer received within ``seconds``."""
    out: list[dict] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.extend(await s.offers(timeout=left))
        except TimeoutError:
            break
    return out


def window(hostname: str, starts_in: float = 600, ip: str = "127.0.0.1") -> dict:
    start = int((time.time() + starts_in) * 1e9)
    machine = {"hostname": hostname, "ip": ip} if ip else {"hostname": hostname}
    return {
        "machine_ids": [machine],
        "unavailability": {"start": {"nanoseconds": start}, "duration": {"nanoseconds": 3600e9}},
    }


async def schedule(backend, windows: list[dict]) -> tuple[int, object]:
    return await post_json(
        f"{backend.master_url}/master/maintenance/schedule", {"windows": windows}
    )


@pytest.mark.parametrize(
    "windows, message",
    [
        ([{"machine_ids": [], "unavailability": {"start": {"nanoseconds": 1}}}], "is empty"),
        ([{"machine_ids": [{"hostname": "agent-1"}]}], "windows[0].unavailability"),
        ([{"machine_ids": [{}], "unavailability": {"start": {"nanoseconds": 1}}}], "are empty"),
        (
            [window("agent-1"), window("AGENT-1")],
            'Machine \'{"hostname":"AGENT-1","ip":"127.0.0.1"}\' appears more than once',
        ),
    ],
)
async def test_bad_schedules_are_refused_with_mesos_messages(backend, windows, message):
    code, body = await schedule(backend, windows)
    assert code == 400 and message in body, (code, body)


async def test_schedule_through_endpoint_and_operator_api(backend):
    assert await get_json(f"{backend.master_url}/master/maintenance/schedule") == {}
    code, body = await schedule(backend, [window("agent-1")])
    assert code == 200, body
    shown = await get_json(f"{backend.master_url}/master/maintenance/schedule")
    assert shown["windows"][0]["machine_ids"] == [{"hostname": "agent-1", "ip": "127.0.0.1"}]
    code, status = await backend.operator({"type": "GET_MAINTENANCE_STATUS"})
    assert code == 200
    draining = status["get_maintenance_status"]["status"]["draining_machines"]
    assert [m["id"]["hostname"] for m in draining] == ["agent-1"]
    code, body = await backend.operator(
        {
            "type": "UPDATE_MAINTENANCE_SCHEDULE",
            "update_maintenance_schedule": {"schedule": {"windows": []}},
        }
    )
    assert code == 200, body
    code, got = await backend.operator({"type": "GET_MAINTENANCE_SCHEDULE"})
    assert got == {"type": "GET_MAINTENANCE_SCHEDULE", "get_maintenance_schedule": {"schedule": {}}}


async def test_offers_carry_the_unavailability_and_inverse_offers_wait_for_answers(connect):
    s = connect()
    await s.subscribe(framework_info())
    held = {o["id"]["value"] for o in await collect(s, 1.0)}
    backend_url = s.url
    # A machine id must name the agent's IP too: the hostname alone matches no agent.
    code, body = await post_json(
        f"{backend_url}/master/maintenance/schedule",
        {"windows": [window("agent-1", ip=""), window("AGENT-1", starts_in=900)]},
    )
    assert code == 200, body
    # Every outstanding offer is rescinded (Mesos updates every machine), and agent-1 is
    # offered again with its window.
    rescinded = set()
    while rescinded != held:
        rescinded.add((await s.next_event("RESCIND"))["rescind"]["offer_id"]["value"])
    fresh = []
    while not fresh:
        offers = await s.offers()
        fresh = [o for o in offers if o["hostname"] == "agent-1"]
        assert all("unavailability" not in o for o in offers if o["hostname"] != "agent-1")
    start = fresh[0]["unavailability"]["start"]["nanoseconds"]
    assert abs(start / 1e9 - (time.time() + 900)) < 60

    # The framework holds resources there: it is asked for them back, once, until it answers.
    event = await s.next_event("INVERSE_OFFERS")
    (inverse,) = event["inverse_offers"]["inverse_offers"]
    assert inverse["agent_id"] == fresh[0]["agent_id"]
    assert inverse["framework_id"]["value"] == s.framework_id
    assert inverse["unavailability"] == fresh[0]["unavailability"]
    assert inverse["url"]["address"]["hostname"] == "agent-1"
    with pytest.raises(TimeoutError):
        await s.next_event("INVERSE_OFFERS", timeout=1.5)
    code, text = await s.call(
        {
            "type": "DECLINE_INVERSE_OFFERS",
            "decline_inverse_offers": {
                "inverse_offer_ids": [inverse["id"]],
                "filters": {"refuse_seconds": 1},
            },
        }
    )
    assert code == 202, text
    assert (await answers_at(backend_url))["agent-1"] == {s.framework_id: "DECLINE"}
    # Asked again once the decline's filter expires; an accept is shown too.
    again = (await s.next_event("INVERSE_OFFERS", timeout=10))["inverse_offers"]["inverse_offers"]
    code, text = await s.call(
        {
            "type": "ACCEPT_INVERSE_OFFERS",
            "accept_inverse_offers": {"inverse_offer_ids": [again[0]["id"]]},
        }
    )
    assert code == 202, text
    assert (await answers_at(backend_url))["agent-1"] == {s.framework_id: "ACCEPT"}


async def answers_at(url: str) -> dict[str, dict[str, str]]:
    status = await get_json(f"{url}/master/maintenance/status")
    return {
        m["id"].get("hostname", "").lower(): {
            s["framework_id"]["value"]: s["status"] for s in m.get("statuses", [])
        }
        for m in status.get("draining_machines", [])
    }


async def test_drain_kills_tasks_with_the_drain_reason_and_deactivates_the_agent(backend, connect):
    s = connect()
    caps = [{"type": "PARTITION_AWARE"}, {"type": "TASK_KILLING_STATE"}]
    await s.subscribe(framework_info(capabilities=caps, checkpoint=True))
    offer = next(o for o in await s.offers() if o["hostname"] == "agent-1")
    await s.accept([offer["id"]["value"]], [command_task(offer, "drained", "sleep 300")])
    while (status := await s.update("drained"))["state"] != "TASK_RUNNING":
        if "uuid" in status:
            await s.ack(status)
    await s.ack(status)
    agent_id = offer["agent_id"]["value"]

    code, body = await backend.operator(
        {"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "nope"}}}
    )
    assert (code, body) == (400, "Unknown agent")
    code, body = await backend.operator(
        {"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": agent_id}}}
    )
    assert code == 200, body
    states = []
    while True:
        status = await s.update("drained", timeout=30)
        states.append((status["state"], status.get("reason")))
        if "uuid" in status:
            await s.ack(status)
        if status["state"] == "TASK_KILLED":
            break
    assert set(states) <= {
        ("TASK_KILLING", "REASON_AGENT_DRAINING"),
        ("TASK_KILLED", "REASON_AGENT_DRAINING"),
    }, states

    async def entry() -> dict:
        return next(a for a in await backend.slaves() if a["id"] == agent_id)

    deadline = time.monotonic() + 20
    while (agent := await entry()).get("drain_info", {}).get("state") != "DRAINED":
        assert time.monotonic() < deadline, agent
        await asyncio.sleep(0.2)
    assert agent["active"] is False and agent["deactivated"] is True
    assert agent["drain_info"]["config"]["mark_gone"] is False
    # Nothing is offered from it any more, until the operator reactivates it.
    code, text = await s.call({"type": "REVIVE"})
    assert code == 202, text
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            offers = await s.offers(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        assert all(o["agent_id"]["value"] != agent_id for o in offers)
    code, body = await backend.operator(
        {"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": agent_id}}}
    )
    assert code == 200, body
    assert (await entry())["active"] is True and "drain_info" not in await entry()
    code, body = await backend.operator(
        {"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": agent_id}}}
    )
    assert (code, body) == (400, "Agent is not deactivated")


async def test_an_agent_in_the_schedule_cannot_be_drained(backend):
    code, body = await schedule(backend, [window("agent-1")])
    assert code == 200, body
    agent_id = await backend.agent_id("agent-1")
    code, body = await backend.operator(
        {"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": agent_id}}}
    )
    assert code == 400
    assert body == (
        f"Agent {agent_id} is part of a maintenance schedule under Machine agent-1 (127.0.0.1)"
    )
