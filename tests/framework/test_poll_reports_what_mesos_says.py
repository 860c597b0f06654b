"""``poll()`` against the real MesosFramework, fed status updates by a recording fake client:
it answers at once (no round trip, no wait, also right after a hub restart), stops a server
whose task Mesos says is unknown or gone with the reason, and a task whose server poll()
reported stopped is killed when its agent comes back (JupyterHub calls no ``stop()`` then)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub

from mesosspawner import MesosSpawner
from mesosspawner.framework import MesosFramework
from mesosspawner.mesos import events
from tests.services.fakes import RecordingClient, framework_config

TASK = "jupyter.fake.alice..n1"


@pytest.fixture
async def fw(monkeypatch):
    config = framework_config(
        master="http://master.invalid:5050",
        name="fake",
        orphan_kill=False,
        reconcile_retry_seconds=0.2,
    )
    framework = MesosFramework(config, client_factory=RecordingClient)
    monkeypatch.setattr(MesosSpawner, "framework", property(lambda self: framework))
    yield framework
    await framework.stop()


def restored_spawner(**traits) -> MesosSpawner:
    """A spawner as a restarted hub makes it: its state loaded from the database."""
    user = SimpleNamespace(name="alice", id=1, groups=[], url="/user/alice/")
    spawner = MesosSpawner(
        user=user,
        mesos_master="http://master.invalid:5050",
        hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"),
        **traits,
    )
    spawner.load_state(
        {"task_id": TASK, "agent_id": "a1", "agent_hostname": "cpu-1", "host_port": 31000}
    )
    return spawner


async def subscribe(fw: MesosFramework) -> None:
    fw.client.subscribed = True
    await fw.subscribed(events.Subscribed(framework_id="fw-1"))


def status(state: str, **extra) -> events.TaskStatus:
    return events.TaskStatus(task_id=TASK, agent_id="a1", state=state, **extra)


async def timed_poll(spawner: MesosSpawner) -> tuple[int | None, float]:
    started = time.monotonic()
    result = await asyncio.wait_for(spawner.poll(), 30)
    return result, time.monotonic() - started


async def test_poll_right_after_a_hub_restart_answers_at_once(fw):
    """Mesos has not answered yet (no subscription at all): the server counts as running,
    and the answer comes without waiting."""
    spawner = restored_spawner()
    result, took = await timed_poll(spawner)
    assert result is None
    assert took < 0.5, f"poll() waited {took:.1f} s"


async def test_a_task_mesos_reports_unknown_stops_the_server_after_the_grace(fw):
    spawner = restored_spawner(unreachable_grace_seconds=0.5)
    await subscribe(fw)
    assert ("reconcile", [(TASK, "a1")]) in fw.client.calls
    await fw.update(
        status(
            "TASK_UNKNOWN",
            reason="REASON_RECONCILIATION",
            message="Reconciliation: Task is unknown",
            source="SOURCE_MASTER",
        )
    )
    # Its agent may still come back (Mesos: "the task may or may not still be running").
    result, took = await timed_poll(spawner)
    assert (result, took < 0.5) == (None, True), took
    await asyncio.sleep(0.6)
    result, took = await timed_poll(spawner)
    assert result == 1 and took < 0.5, (result, took)
    shown = fw.stops.last("alice", "")
    assert "unknown" in shown and "Reconciliation: Task is unknown" in shown, shown


@pytest.mark.parametrize(
    "state, reason, message",
    [
        ("TASK_GONE", "REASON_RECONCILIATION", "Reconciliation: Task is unknown to the agent"),
        ("TASK_GONE_BY_OPERATOR", "REASON_AGENT_REMOVED_BY_OPERATOR", "Agent has been marked gone"),
    ],
)
async def test_a_gone_task_stops_the_server_at_once_saying_why(fw, state, reason, message):
    spawner = restored_spawner()
    await subscribe(fw)
    await fw.update(status(state, reason=reason, message=message, source="SOURCE_MASTER"))
    result, took = await timed_poll(spawner)
    assert result == 1 and took < 0.5, (result, took)
    shown = fw.stops.last("alice", "")
    assert state.removeprefix("TASK_").lower() in shown and message in shown, shown


async def test_a_task_whose_server_poll_stopped_is_killed_when_its_agent_returns(fw):
    """JupyterHub does not call stop() for a server poll() reported stopped: the task must
    still be killed should it ever run again."""
    spawner = restored_spawner(unreachable_grace_seconds=0.2)
    await subscribe(fw)
    await fw.update(status("TASK_RUNNING", reason="REASON_RECONCILIATION"))
    assert await spawner.poll() is None
    await fw.update(status("TASK_UNREACHABLE", reason="REASON_AGENT_REMOVED"))
    await asyncio.sleep(0.3)
    assert await spawner.poll() == 1  # JupyterHub now forgets the server, without stop()
    assert fw.client.of("kill") == []  # nothing can reach it now
    await fw.update(
        status(
            "TASK_RUNNING",
            reason="REASON_AGENT_REREGISTERED",
            message="Unreachable agent re-reregistered",
            source="SOURCE_MASTER",
        )
    )
    await asyncio.sleep(0.05)
    assert fw.client.of("kill") == [TASK]


async def test_killing_a_task_mesos_cannot_reach_does_not_wait_out_the_timeout(fw):
    """Mesos answers a KILL of a task it cannot reach with its state (TASK_UNKNOWN,
    TASK_UNREACHABLE): the kill is remembered, not re-sent in a loop until the timeout."""
    await subscribe(fw)
    restored_spawner()
    await fw.update(status("TASK_UNKNOWN", reason="REASON_RECONCILIATION"))

    async def answer_kills():
        while True:
            await asyncio.sleep(0.02)
            if fw.client.of("kill"):
                await fw.update(status("TASK_UNKNOWN", reason="REASON_RECONCILIATION"))

    answering = asyncio.ensure_future(answer_kills())
    try:
        started = time.monotonic()
        record = await asyncio.wait_for(fw.kill(TASK, timeout=20), 30)
        took = time.monotonic() - started
    finally:
        answering.cancel()
    assert took < 3, f"kill() waited {took:.1f} s"
    assert record.kill_wanted and not record.claimed
    assert len(fw.client.of("kill")) <= 2, fw.client.of("kill")
