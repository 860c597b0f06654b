"""Health checks as Mesos's command executor runs them: healthy flags, kill after failures."""

from __future__ import annotations

from mesosspawner.localmesos.health import HealthPolicy, HealthState
from mesosspawner.localmesos.testing import command_task, framework_info


def test_failures_in_grace_period_are_ignored_until_first_success():
    state = HealthState(HealthPolicy(grace_period=10, consecutive_failures=3))
    assert state.result(False, elapsed=1) == (None, False)
    assert state.result(True, elapsed=2) == (True, False)
    assert state.result(True, elapsed=3) == (None, False)  # no news, no update
    assert state.result(False, elapsed=4) == (False, False)  # first failure reported
    assert state.result(False, elapsed=5) == (None, False)
    assert state.result(False, elapsed=6) == (False, True)  # third: kill


def test_recovery_is_reported():
    state = HealthState(HealthPolicy(grace_period=0, consecutive_failures=5))
    assert state.result(False, elapsed=1) == (False, False)
    assert state.result(True, elapsed=2) == (True, False)


async def test_command_health_check_reports_and_kills(connect):
    s = connect()
    await s.subscribe(framework_info())
    offer = next(o for o in await s.offers() if o["hostname"] == "agent-1")
    task = command_task(offer, "t-health", "touch ok; sleep 3; rm ok; sleep 30", cpus=0.1)
    task["health_check"] = {
        "type": "COMMAND",
        "command": {"value": "test -f ok"},
        "delay_seconds": 0,
        "interval_seconds": 0.2,
        # Failures before the first success (the shell has not run ``touch`` yet on a busy
        # machine) fall in the grace period and are ignored; the first success ends it.
        "grace_period_seconds": 20,
        "consecutive_failures": 2,
        "timeout_seconds": 5,
    }
    await s.accept([offer["id"]["value"]], [task])
    seen, uuids = [], set()
    while not seen or seen[-1]["state"] not in ("TASK_KILLED", "TASK_FAILED", "TASK_FINISHED"):
        status = await s.update("t-health", timeout=15)
        await s.ack(status)
        # An update the agent sends again because the ack was late (localmesos's test clusters
        # retry after 0.5 s) is the same update: Mesos delivers at least once.
        if status["uuid"] not in uuids:
            uuids.add(status["uuid"])
            seen.append(status)
    flags = [(st["state"], st.get("healthy")) for st in seen]
    assert flags[:2] == [("TASK_STARTING", None), ("TASK_RUNNING", None)]
    assert ("TASK_RUNNING", True) in flags
    assert flags[-2:] == [("TASK_RUNNING", False), ("TASK_KILLED", False)]
    health = [st for st in seen if st.get("healthy") is not None and st["state"] == "TASK_RUNNING"]
    assert all(st["reason"] == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED" for st in health)
