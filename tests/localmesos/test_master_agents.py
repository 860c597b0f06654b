"""Agent loss and return: rescinds, TASK_LOST / TASK_UNREACHABLE, FAILURE, re-registration."""

from __future__ import annotations

import pytest

from mesosspawner.localmesos.testing import command_task, framework_info


@pytest.mark.parametrize(
    ("caps", "expected"), [([], "TASK_LOST"), ([{"type": "PARTITION_AWARE"}], "TASK_UNREACHABLE")]
)
async def test_stopped_agent_loses_its_tasks(connect, cluster, caps, expected):
    s = connect()
    await s.subscribe(framework_info(capabilities=caps))
    offers = await s.offers()
    offer = next(o for o in offers if o["hostname"] == "agent-1")
    await s.accept(
        [offer["id"]["value"]],
        [command_task(offer, "t-host", "sleep 60", cpus=0.1)],
        filters={"refuse_seconds": 0.1},
    )
    while (status := await s.update("t-host"))["state"] != "TASK_RUNNING":
        await s.ack(status)
    await s.ack(status)
    # Wait until agent-1's remaining resources are on offer again, so a rescind must follow.
    while not any(o["hostname"] == "agent-1" for o in await s.offers()):
        pass
    await cluster.stop_agent("agent-1")
    rescind = await s.next_event("RESCIND", timeout=5)
    assert rescind["rescind"]["offer_id"]["value"]
    status = await s.update("t-host", timeout=5)  # unreachable timeout is 1 s in the fixture
    assert status["state"] == expected
    assert status["source"] == "SOURCE_MASTER"
    assert status["reason"] == "REASON_SLAVE_REMOVED"
    assert "uuid" not in status
    failure = await s.next_event("FAILURE", timeout=5)
    assert failure["failure"]["agent_id"] == offer["agent_id"]

    await cluster.start_agent("agent-1")
    while True:
        back = [o for o in await s.offers(timeout=5) if o["hostname"] == "agent-1"]
        if back:
            break
    assert back[0]["agent_id"] != offer["agent_id"]  # a restarted agent registers anew
