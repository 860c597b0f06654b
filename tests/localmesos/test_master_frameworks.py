"""Framework lifecycle: re-subscribe, failover_timeout, teardown, removed frameworks."""

from __future__ import annotations

import asyncio
import json

from tornado.httpclient import AsyncHTTPClient

from mesosspawner.localmesos.testing import command_task, framework_info


async def _state(backend) -> dict:
    return json.loads((await AsyncHTTPClient().fetch(f"{backend.url}/master/state")).body)


async def _run_task(s, task_id: str) -> dict:
    while True:
        offers = await s.offers()
        offer = next((o for o in offers if o["hostname"] == "agent-1"), None)
        if offer:
            break
    await s.accept([offer["id"]["value"]], [command_task(offer, task_id, "sleep 60", cpus=0.1)])
    while (status := await s.update(task_id))["state"] != "TASK_RUNNING":
        await s.ack(status)
    await s.ack(status)
    return offer


async def test_resubscribe_same_id_gets_new_stream_and_closes_old(connect):
    first = connect()
    await first.subscribe(framework_info(failover_timeout=60))
    second = connect()
    info = framework_info(failover_timeout=60, id={"value": first.framework_id})
    event = await second.subscribe(info)
    assert event["type"] == "SUBSCRIBED"
    assert second.framework_id == first.framework_id
    assert second.stream_id != first.stream_id
    await asyncio.wait_for(first.closed.wait(), 5)
    assert (await first.call({"type": "REVIVE"}))[0] == 400  # old stream id no longer valid
    assert (await second.call({"type": "REVIVE"}))[0] == 202


async def test_tasks_survive_disconnect_within_failover_timeout(connect, backend):
    s = connect()
    await s.subscribe(framework_info(failover_timeout=30))
    await _run_task(s, "t-survive")
    fid = s.framework_id
    await s.close()
    await asyncio.sleep(0.5)
    state = await _state(backend)
    fw = next(f for f in state["frameworks"] if f["id"] == fid)
    assert fw["connected"] is False
    assert [t["state"] for t in fw["tasks"]] == ["TASK_RUNNING"]
    again = connect()
    await again.subscribe(framework_info(failover_timeout=30, id={"value": fid}))
    await again.call({"type": "RECONCILE", "reconcile": {"tasks": []}})
    status = await again.update("t-survive")
    assert status["state"] == "TASK_RUNNING"


async def test_failover_timeout_kills_tasks_and_removes_framework(connect, backend):
    s = connect()
    await s.subscribe(framework_info(failover_timeout=0.5))
    await _run_task(s, "t-doomed")
    fid = s.framework_id
    await s.close()
    for _ in range(50):
        state = await _state(backend)
        if any(f["id"] == fid for f in state["completed_frameworks"]):
            break
        await asyncio.sleep(0.1)
    assert fid not in [f["id"] for f in state["frameworks"]]
    done = next(f for f in state["completed_frameworks"] if f["id"] == fid)
    assert [t["state"] for t in done["completed_tasks"]] == ["TASK_KILLED"]
    agent = next(a for a in state["slaves"] if a["hostname"] == "agent-1")
    assert agent["used_resources"]["cpus"] == 0
    late = connect()
    event = await late.subscribe(framework_info(id={"value": fid}))
    assert event["type"] == "ERROR"
    assert event["error"]["message"] == "Framework has been removed"


async def test_teardown_kills_everything(connect, backend):
    s = connect()
    await s.subscribe(framework_info(failover_timeout=60))
    await _run_task(s, "t-teardown")
    assert (await s.call({"type": "TEARDOWN"}))[0] == 202
    await asyncio.wait_for(s.closed.wait(), 5)
    for _ in range(50):
        state = await _state(backend)
        done = [f for f in state["completed_frameworks"] if f["id"] == s.framework_id]
        agent = next(a for a in state["slaves"] if a["hostname"] == "agent-1")
        if done and agent["used_resources"]["cpus"] == 0:
            break
        await asyncio.sleep(0.1)
    assert s.framework_id not in [f["id"] for f in state["frameworks"]]
    assert [t["state"] for t in done[0]["completed_tasks"]] == ["TASK_KILLED"]
    assert agent["used_resources"]["cpus"] == 0


async def test_update_framework_changes_roles(connect):
    s = connect()
    info = framework_info(roles=["a"], capabilities=[{"type": "MULTI_ROLE"}])
    await s.subscribe(info)
    await s.offers()
    info = dict(info, roles=["spark"], id={"value": s.framework_id})
    code, text = await s.call(
        {"type": "UPDATE_FRAMEWORK", "update_framework": {"framework_info": info}}
    )
    assert code == 200, text  # Master::updateFramework returns OK, not Accepted
    while True:
        offers = await s.offers()
        if any(o["hostname"] == "spark-1" for o in offers):
            break
    assert {o["allocation_info"]["role"] for o in offers} == {"spark"}
