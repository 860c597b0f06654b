"""Tasks Mesos no longer knows, and frameworks it will not take back, on both masters: the
operator's MARK_AGENT_GONE (v1 operator API), reconciliation of tasks on gone and unknown
agents, and a re-subscription whose FrameworkInfo changed what Mesos keeps fixed."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from mesosspawner.localmesos.testing import command_task, framework_info

PARTITION_AWARE = [{"type": "PARTITION_AWARE"}]


async def operator_call(backend, body: dict) -> tuple[int, str]:
    """``POST /api/v1`` (the v1 operator API) with a JSON body."""
    request = HTTPRequest(
        f"{backend.master_url}/api/v1",
        method="POST",
        body=json.dumps(body),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        request_timeout=10,
    )
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    return response.code, (response.body or b"").decode(errors="replace")


def mark_gone(agent_id: str) -> dict:
    return {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}}


async def _offer_from(s, hostname: str) -> dict:
    while True:
        for offer in await s.offers():
            if offer["hostname"] == hostname:
                return offer


async def _running(s, hostname: str, task_id: str) -> dict:
    offer = await _offer_from(s, hostname)
    task = command_task(offer, task_id, "sleep 120", cpus=0.1)
    await s.accept([offer["id"]["value"]], [task], filters={"refuse_seconds": 0.1})
    while (status := await s.update(task_id))["state"] != "TASK_RUNNING":
        await s.ack(status)
    await s.ack(status)
    return offer


@pytest.mark.own_cluster
async def test_mark_agent_gone_ends_its_tasks_gone_by_operator(connect, backend):
    s = connect()
    await s.subscribe(framework_info(capabilities=PARTITION_AWARE, checkpoint=True))
    offer = await _running(s, "agent-1", "t-gone")
    agent_id = offer["agent_id"]["value"]

    code, text = await operator_call(backend, mark_gone(agent_id))
    assert code == 200, text
    status = await s.update("t-gone", timeout=15)
    assert status["state"] == "TASK_GONE_BY_OPERATOR"
    assert status["reason"] == "REASON_AGENT_REMOVED_BY_OPERATOR"
    assert status["source"] == "SOURCE_MASTER"
    assert "uuid" not in status
    assert "marked gone" in status["message"]
    slaves = {a["id"] for a in await backend.slaves()}
    assert agent_id not in slaves

    # Asked again, the master names the gone agent: TASK_GONE_BY_OPERATOR, not TASK_UNKNOWN.
    tasks = [{"task_id": {"value": "t-gone"}, "agent_id": {"value": agent_id}}]
    assert (await s.call({"type": "RECONCILE", "reconcile": {"tasks": tasks}}))[0] == 202
    again = await s.update("t-gone")
    assert (again["state"], again["reason"]) == (
        "TASK_GONE_BY_OPERATOR",
        "REASON_RECONCILIATION",
    )
    # Marking it again is harmless; an agent the master never knew is 404.
    assert (await operator_call(backend, mark_gone(agent_id)))[0] == 200
    code, text = await operator_call(backend, mark_gone("no-such-agent-S9"))
    assert code == 404, text


async def test_reconciling_a_task_of_an_unknown_agent_answers_task_unknown(connect):
    s = connect()
    await s.subscribe(framework_info(capabilities=PARTITION_AWARE))
    tasks = [{"task_id": {"value": "t-lost"}, "agent_id": {"value": "f0e0d0c0-no-such-S7"}}]
    assert (await s.call({"type": "RECONCILE", "reconcile": {"tasks": tasks}}))[0] == 202
    status = await s.update("t-lost")
    assert (status["state"], status["reason"]) == ("TASK_UNKNOWN", "REASON_RECONCILIATION")
    assert status["message"] == "Reconciliation: Task is unknown"


async def test_resubscribing_with_another_principal_is_refused(connect):
    first = connect()
    await first.subscribe(framework_info(failover_timeout=60, principal="hub-a"))
    framework_id = first.framework_id
    await first.close()
    again = connect()
    event = await again.subscribe(
        framework_info(failover_timeout=60, principal="hub-b", id={"value": framework_id})
    )
    assert event["type"] == "ERROR"
    assert event["error"]["message"] == "Changing framework's principal is not allowed."
    await asyncio.wait_for(again.closed.wait(), 5)


async def test_resubscribing_with_another_user_keeps_the_first_user(connect, backend):
    first = connect()
    await first.subscribe(framework_info(failover_timeout=60, user="nobody"))
    framework_id = first.framework_id
    await first.close()
    again = connect()
    event = await again.subscribe(
        framework_info(failover_timeout=60, user="daemon", id={"value": framework_id})
    )
    assert event["type"] == "SUBSCRIBED"
    state = await backend.state()
    (fw,) = [f for f in state["frameworks"] if f["id"] == framework_id]
    assert fw["user"] == "nobody"
