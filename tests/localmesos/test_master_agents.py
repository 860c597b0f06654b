"""Agent loss and return: rescinds, TASK_LOST / TASK_UNREACHABLE, FAILURE, re-registration,
partitions that heal, and kills sent while an agent is away."""

from __future__ import annotations

import asyncio

import pytest

from mesosspawner.localmesos.testing import command_task, framework_info

# Every test here faults an agent.
pytestmark = pytest.mark.own_cluster

PARTITION_AWARE = [{"type": "PARTITION_AWARE"}]


async def _offer_from(s, hostname: str) -> dict:
    while True:
        for offer in await s.offers():
            if offer["hostname"] == hostname:
                return offer


async def _run(s, hostname: str, *task_ids: str) -> dict:
    offer = await _offer_from(s, hostname)
    tasks = [command_task(offer, tid, "sleep 120", cpus=0.1) for tid in task_ids]
    await s.accept([offer["id"]["value"]], tasks, filters={"refuse_seconds": 0.1})
    running: set[str] = set()
    while running != set(task_ids):
        status = await s.update()
        await s.ack(status)
        if status["state"] == "TASK_RUNNING":
            running.add(status["task_id"]["value"])
    return offer


async def _updates(s, count: int, timeout: float) -> dict[str, dict]:
    """The next ``count`` updates, by task id (``s.update(task_id)`` drops other tasks')."""
    got: dict[str, dict] = {}
    for _ in range(count):
        status = await s.update(timeout=timeout)
        got[status["task_id"]["value"]] = status
    return got


async def _active(backend, hostname: str) -> bool | None:
    for a in await backend.slaves():
        if a["hostname"] == hostname:
            return a["active"]
    return None


async def _wait_active(backend, hostname: str, active: bool, timeout: float = 15) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while await _active(backend, hostname) is not active:
        assert loop.time() < end, f"{hostname} never became active={active}"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("checkpoint", "caps", "expected"),
    [
        # Tasks of a framework that does not checkpoint are lost as soon as the agent's
        # connection breaks; the others only when the agent is declared unreachable.
        (False, PARTITION_AWARE, ("TASK_LOST", "REASON_AGENT_DISCONNECTED")),
        (True, [], ("TASK_LOST", "REASON_AGENT_REMOVED")),
        (True, PARTITION_AWARE, ("TASK_UNREACHABLE", "REASON_AGENT_REMOVED")),
    ],
)
async def test_stopped_agent_loses_its_tasks(connect, backend, checkpoint, caps, expected):
    s = connect()
    await s.subscribe(framework_info(capabilities=caps, checkpoint=checkpoint))
    offer = await _run(s, "agent-1", "t-host")
    # Wait until agent-1's remaining resources are on offer again, so a rescind must follow.
    await _offer_from(s, "agent-1")
    await backend.stop_agent("agent-1")
    rescind = await s.next_event("RESCIND", timeout=5)
    assert rescind["rescind"]["offer_id"]["value"]
    status = await s.update("t-host", timeout=backend.unreachable_after + 5)
    assert (status["state"], status["reason"]) == expected
    assert status["source"] == "SOURCE_MASTER"
    assert "uuid" not in status
    failure = await s.next_event("FAILURE", timeout=backend.unreachable_after + 5)
    assert failure["failure"]["agent_id"] == offer["agent_id"]

    await backend.start_agent("agent-1")
    back = await _offer_from(s, "agent-1")
    assert back["agent_id"] != offer["agent_id"]  # a machine that boots again is a new agent


@pytest.mark.parametrize(
    ("caps", "lost"), [([], "TASK_LOST"), (PARTITION_AWARE, "TASK_UNREACHABLE")]
)
async def test_partitioned_agent_comes_back_with_its_tasks(connect, backend, caps, lost):
    s = connect()
    await s.subscribe(framework_info(capabilities=caps, checkpoint=True, failover_timeout=600))
    offer = await _run(s, "agent-1", "t-stays", "t-killed-meanwhile")
    await backend.partition("agent-1")
    gone = await _updates(s, 2, timeout=backend.unreachable_after + 10)
    assert set(gone) == {"t-stays", "t-killed-meanwhile"}
    for status in gone.values():
        assert (status["state"], status["reason"]) == (lost, "REASON_AGENT_REMOVED")
        assert status["message"] == "health check timed out"
    await s.next_event("FAILURE", timeout=5)
    # A kill of an unreachable task is answered like a reconciliation and not remembered.
    kill = {"task_id": {"value": "t-killed-meanwhile"}, "agent_id": offer["agent_id"]}
    assert (await s.call({"type": "KILL", "kill": kill}))[0] == 202
    status = await s.update("t-killed-meanwhile")
    assert (status["state"], status["reason"]) == (lost, "REASON_RECONCILIATION")
    assert status["message"] == "Reconciliation: Task is unreachable"

    await backend.heal("agent-1")
    back = await _updates(s, 2, timeout=20)
    for status in back.values():
        # Every framework hears the tasks again, partition-aware or not; none was killed.
        assert status["state"] == "TASK_RUNNING"
        assert status["reason"] == "REASON_AGENT_REREGISTERED"
        assert status["source"] == "SOURCE_MASTER"
        assert status["message"] == "Unreachable agent re-reregistered"
        assert "uuid" not in status
    state = await backend.state()
    fw = next(f for f in state["frameworks"] if f["id"] == s.framework_id)
    assert sorted((t["id"], t["state"]) for t in fw["tasks"]) == [
        ("t-killed-meanwhile", "TASK_RUNNING"),
        ("t-stays", "TASK_RUNNING"),
    ]
    assert await backend.agent_id("agent-1") == offer["agent_id"]["value"]


async def test_kill_sent_to_a_disconnected_agent_is_resent_when_it_returns(connect, backend):
    s = connect()
    await s.subscribe(framework_info(checkpoint=True, failover_timeout=600))
    offer = await _run(s, "agent-1", "t-kill-later")
    await backend.kill_agent("agent-1")
    await _wait_active(backend, "agent-1", False)
    kill = {"task_id": {"value": "t-kill-later"}, "agent_id": offer["agent_id"]}
    assert (await s.call({"type": "KILL", "kill": kill}))[0] == 202
    await backend.restart_agent("agent-1")
    # The agent may first resend TASK_RUNNING if its acknowledgement was still in flight.
    while (status := await s.update("t-kill-later", timeout=20))["state"] == "TASK_RUNNING":
        await s.ack(status)
    assert status["state"] == "TASK_KILLED"
    assert status["source"] == "SOURCE_EXECUTOR"
    await s.ack(status)
