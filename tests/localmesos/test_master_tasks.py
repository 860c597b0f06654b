"""Launch, status updates with uuids and retries, kill, validation errors, reconciliation."""

from __future__ import annotations

import asyncio
import base64
import os
import pwd

import pytest

from mesosspawner.localmesos.testing import command_task, framework_info


async def _offer_from(s, hostname: str) -> dict:
    while True:
        for offer in await s.offers():
            if offer["hostname"] == hostname:
                return offer


async def _running(s, offer, task_id, command="sleep 30", **res):
    res = res or {"cpus": 0.1, "mem": 32}
    await s.accept([offer["id"]["value"]], [command_task(offer, task_id, command, **res)])
    states = []
    while not states or states[-1]["state"] != "TASK_RUNNING":
        status = await s.update(task_id)
        states.append(status)
        await s.ack(status)
        assert status["state"] in ("TASK_STARTING", "TASK_RUNNING"), status
    return states


async def test_launch_runs_starting_running_finished_with_uuids(connect):
    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    task = command_task(offer, "t-ok", "echo hello; exit 0", cpus=0.1, mem=32)
    await s.accept([offer["id"]["value"]], [task])
    seen = []
    while not seen or seen[-1]["state"] != "TASK_FINISHED":
        status = await s.update("t-ok")
        assert status["source"] == "SOURCE_EXECUTOR"
        assert status["agent_id"] == offer["agent_id"]
        assert len(base64.b64decode(status["uuid"])) == 16
        seen.append(status)
        await s.ack(status)
    assert [st["state"] for st in seen] == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]


async def test_task_environment_and_sandbox_files(connect, backend):
    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    command = (
        'echo "$MESOS_EXECUTOR_ID $GREETING ${HOME-nohome} ${MESOS_TASK_ID-unset}" > out; '
        'pwd > where; echo "$MESOS_SANDBOX" >> where'
    )
    task = command_task(offer, "t-env", command, cpus=0.1)
    task["command"]["environment"] = {"variables": [{"name": "GREETING", "value": "hi"}]}
    await s.accept([offer["id"]["value"]], [task])
    while (status := await s.update("t-env"))["state"] != "TASK_FINISHED":
        await s.ack(status)
    sandbox = backend.sandbox("agent-1", offer["agent_id"]["value"], s.framework_id, "t-env")
    # The command executor's environment, not the agent's: no HOME, no MESOS_TASK_ID.
    assert open(os.path.join(sandbox, "out")).read() == "t-env hi nohome unset\n"
    where = open(os.path.join(sandbox, "where")).read().split()
    assert {os.path.realpath(p) for p in where} == {os.path.realpath(sandbox)}


async def test_shell_false_execs_value_with_arguments(connect, backend):
    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    task = command_task(offer, "t-exec", "", cpus=0.1)
    task["command"] = {"shell": False, "value": "/bin/echo", "arguments": ["echo", "a b", "$X"]}
    await s.accept([offer["id"]["value"]], [task])
    while (status := await s.update("t-exec"))["state"] != "TASK_FINISHED":
        await s.ack(status)
    sandbox = backend.sandbox("agent-1", offer["agent_id"]["value"], s.framework_id, "t-exec")
    # Real Mesos's command executor logs to stdout too: look for the task's own line.
    assert "a b $X" in open(os.path.join(sandbox, "stdout")).read().splitlines()


async def test_failing_command_is_task_failed(connect):
    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    await s.accept([offer["id"]["value"]], [command_task(offer, "t-bad", "exit 3", cpus=0.1)])
    while (status := await s.update("t-bad"))["state"] in ("TASK_STARTING", "TASK_RUNNING"):
        await s.ack(status)
    assert status["state"] == "TASK_FAILED"
    assert "3" in status["message"]


@pytest.mark.parametrize(
    ("where", "partition_aware", "expected"),
    [
        ("command", False, "TASK_LOST"),
        ("command", True, "TASK_DROPPED"),
        ("framework", False, "TASK_LOST"),
    ],
)
async def test_user_must_exist_on_the_agent(connect, where, partition_aware, expected):
    # The agent chowns the sandbox to the task's user (command.user, else the framework's)
    # before anything runs: no TASK_STARTING, and the task is lost/dropped, not failed.
    s = connect()
    caps = [{"type": "PARTITION_AWARE"}] if partition_aware else []
    info = framework_info(capabilities=caps)
    if where == "framework":
        info["user"] = "no-such-user-xyz"
    await s.subscribe(info)
    offer = await _offer_from(s, "agent-1")
    task = command_task(offer, "t-user", "true", cpus=0.1)
    if where == "command":
        task["command"]["user"] = "no-such-user-xyz"
    await s.accept([offer["id"]["value"]], [task])
    status = await s.update("t-user")
    assert status["state"] == expected
    assert status["source"] == "SOURCE_AGENT"
    assert status["reason"] == "REASON_EXECUTOR_TERMINATED"
    assert "No such user 'no-such-user-xyz'" in status["message"]
    assert status["uuid"]  # an agent's update: acknowledged like any other
    await s.ack(status)


async def test_volumes_on_a_command_task_are_refused(connect):
    # A default agent (no filesystem/linux or volume isolator) cannot mount volumes.
    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    task = command_task(offer, "t-vol", "sleep 30", cpus=0.1)
    task["container"] = {
        "type": "MESOS",
        "volumes": [{"container_path": "data", "host_path": "/tmp", "mode": "RW"}],
    }
    await s.accept([offer["id"]["value"]], [task])
    status = await s.update("t-vol")
    assert status["state"] == "TASK_FAILED"
    assert status["source"] == "SOURCE_AGENT"
    assert status["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert "Volumes in ContainerInfo is not supported" in status["message"]


async def test_task_id_rules(connect):
    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    bad = {
        "a/b": "contains invalid characters",
        "back\\slash": "contains invalid characters",
        "ctl\x01char": "contains invalid characters",
        "tab\tchar": "contains invalid characters",
        "x" * 256: "must not be greater than 255 characters",
        "..": "is disallowed",
    }
    good = ["with space", "y" * 255]
    tasks = [command_task(offer, tid, "sleep 30", cpus=0.1) for tid in [*bad, *good]]
    await s.accept([offer["id"]["value"]], tasks)
    seen: dict[str, dict] = {}
    while len(seen) < len(bad) + len(good):
        status = await s.update()
        tid = status["task_id"]["value"]
        if status["state"] == "TASK_ERROR":
            seen[tid] = status
        elif status["state"] == "TASK_RUNNING":
            seen[tid] = status
        if "uuid" in status:
            await s.ack(status)
    for tid, message in bad.items():
        assert seen[tid]["state"] == "TASK_ERROR", tid
        assert seen[tid]["reason"] == "REASON_TASK_INVALID"
        assert message in seen[tid]["message"], (tid, seen[tid]["message"])
    assert all(seen[tid]["state"] == "TASK_RUNNING" for tid in good)


async def test_kill_sends_sigterm_then_killed(connect):
    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    await _running(s, offer, "t-kill")
    code, _ = await s.call(
        {"type": "KILL", "kill": {"task_id": {"value": "t-kill"}, "agent_id": offer["agent_id"]}}
    )
    assert code == 202
    status = await s.update("t-kill")
    assert status["state"] == "TASK_KILLED"
    assert status["uuid"]
    await s.ack(status)


async def test_kill_escalates_to_sigkill_after_grace(connect):
    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    task = command_task(offer, "t-stubborn", "trap '' TERM; sleep 30 & wait; sleep 30", cpus=0.1)
    task["kill_policy"] = {"grace_period": {"nanoseconds": 200_000_000}}
    await s.accept([offer["id"]["value"]], [task])
    while (status := await s.update("t-stubborn"))["state"] != "TASK_RUNNING":
        await s.ack(status)
    await s.ack(status)
    await asyncio.sleep(0.2)  # let the shell install its trap
    kill = {"task_id": {"value": "t-stubborn"}, "agent_id": offer["agent_id"]}
    assert (await s.call({"type": "KILL", "kill": kill}))[0] == 202
    status = await s.update("t-stubborn", timeout=10)
    assert status["state"] == "TASK_KILLED"
    assert status["message"] == "Command terminated with signal Killed"


async def test_unacknowledged_update_is_resent_with_same_uuid(connect, backend):
    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    await s.accept([offer["id"]["value"]], [command_task(offer, "t-retry", "sleep 30", cpus=0.1)])
    first = await s.update("t-retry")
    # localmesos retries after 0.5 s in the fixture; real Mesos after 10 s (not a flag).
    again = await s.update("t-retry", timeout=backend.status_retry_interval + 5)
    assert again["uuid"] == first["uuid"]
    assert again["state"] == first["state"] == "TASK_STARTING"
    await s.ack(first)
    running = await s.update("t-retry")
    assert running["state"] == "TASK_RUNNING"


async def test_invalid_offer_gives_task_lost_or_dropped_without_uuid(connect):
    for partition_aware, expected in ((False, "TASK_LOST"), (True, "TASK_DROPPED")):
        s = connect()
        caps = [{"type": "PARTITION_AWARE"}] if partition_aware else []
        await s.subscribe(framework_info(capabilities=caps))
        offer = await _offer_from(s, "agent-1")
        task = command_task(offer, "t-stale", "true", cpus=0.1)
        code, _ = await s.call(
            {
                "type": "ACCEPT",
                "accept": {
                    "offer_ids": [{"value": "no-such-offer"}],
                    "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
                },
            }
        )
        assert code == 202
        status = await s.update("t-stale")
        assert status["state"] == expected
        assert status["reason"] == "REASON_INVALID_OFFERS"
        assert status["source"] == "SOURCE_MASTER"
        assert "uuid" not in status
        await s.call({"type": "TEARDOWN"})


async def test_offer_used_twice_is_invalid(connect):
    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    await s.accept([offer["id"]["value"]], [command_task(offer, "t-a", "sleep 30", cpus=0.1)])
    await s.accept([offer["id"]["value"]], [command_task(offer, "t-b", "sleep 30", cpus=0.1)])
    status = await s.update("t-b")
    assert status["state"] == "TASK_LOST"
    assert status["reason"] == "REASON_INVALID_OFFERS"


async def test_bad_tasks_get_task_error(connect):
    s = connect()
    await s.subscribe(framework_info(capabilities=[{"type": "GPU_RESOURCES"}]))
    offer = await _offer_from(s, "gpu-1")
    too_big = command_task(offer, "t-big", "true", cpus=1000)
    half_gpu = command_task(offer, "t-half", "true", cpus=0.1, gpus=0.5)
    no_command = command_task(offer, "t-nocmd", "true", cpus=0.1)
    del no_command["command"]
    ok = command_task(offer, "t-fine", "sleep 30", cpus=0.1)
    dup = command_task(offer, "t-fine", "sleep 30", cpus=0.1)
    await s.accept([offer["id"]["value"]], [too_big, half_gpu, no_command, ok, dup])
    errors = {}
    while len(errors) < 4:
        status = await s.update()
        if status["state"] == "TASK_ERROR":
            assert status["reason"] == "REASON_TASK_INVALID"
            assert "uuid" not in status
            errors[status["task_id"]["value"]] = status["message"]
        else:
            await s.ack(status)
    assert set(errors) == {"t-big", "t-half", "t-nocmd", "t-fine"}
    assert "gpus" in errors["t-half"]
    assert "duplicate" in errors["t-fine"]


async def test_gpu_task_gets_no_invented_device_variables(connect, backend):
    # Real Mesos accounts whole GPUs and isolates them through device cgroups (the nvidia
    # isolator); it sets neither CUDA_VISIBLE_DEVICES nor NVIDIA_VISIBLE_DEVICES.
    s = connect()
    await s.subscribe(framework_info(capabilities=[{"type": "GPU_RESOURCES"}]))
    offer = await _offer_from(s, "gpu-1")
    command = 'echo "[${CUDA_VISIBLE_DEVICES-unset}/${NVIDIA_VISIBLE_DEVICES-unset}]" > gpus'
    task = command_task(offer, "t-gpu", command, cpus=0.1, gpus=2)
    await s.accept([offer["id"]["value"]], [task])
    while (status := await s.update("t-gpu"))["state"] != "TASK_FINISHED":
        await s.ack(status)
    sandbox = backend.sandbox("gpu-1", offer["agent_id"]["value"], s.framework_id, "t-gpu")
    assert open(os.path.join(sandbox, "gpus")).read() == "[unset/unset]\n"
    half = command_task(offer, "t-half", "true", cpus=0.1, gpus=1)
    await s.accept([offer["id"]["value"]], [half])  # the offer is used up: invalid
    assert (await s.update("t-half"))["state"] == "TASK_LOST"


async def test_explicit_and_implicit_reconciliation(connect):
    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    await _running(s, offer, "t-rec")
    # Implicit: every task the master knows.
    assert (await s.call({"type": "RECONCILE", "reconcile": {"tasks": []}}))[0] == 202
    status = await s.update("t-rec")
    assert status["state"] == "TASK_RUNNING"
    assert status["reason"] == "REASON_RECONCILIATION"
    assert "uuid" not in status
    # Explicit: a known task and an unknown one.
    tasks = [
        {"task_id": {"value": "t-rec"}, "agent_id": offer["agent_id"]},
        {"task_id": {"value": "t-never"}},
        {"task_id": {"value": "t-never-on-agent"}, "agent_id": offer["agent_id"]},
    ]
    assert (await s.call({"type": "RECONCILE", "reconcile": {"tasks": tasks}}))[0] == 202
    got = {}
    while len(got) < 3:
        st = await s.update()
        got[st["task_id"]["value"]] = st
    assert got["t-rec"]["state"] == "TASK_RUNNING"
    assert got["t-never"]["state"] == "TASK_LOST"
    assert got["t-never-on-agent"]["state"] == "TASK_LOST"
    assert all(st["reason"] == "REASON_RECONCILIATION" for st in got.values())


async def test_reconcile_unknown_tasks_partition_aware(connect):
    s = connect()
    await s.subscribe(framework_info(capabilities=[{"type": "PARTITION_AWARE"}]))
    offer = await _offer_from(s, "agent-1")
    tasks = [
        {"task_id": {"value": "u1"}},
        {"task_id": {"value": "u2"}, "agent_id": offer["agent_id"]},
    ]
    await s.call({"type": "RECONCILE", "reconcile": {"tasks": tasks}})
    got = {}
    while len(got) < 2:
        st = await s.update()
        got[st["task_id"]["value"]] = st["state"]
    assert got == {"u1": "TASK_UNKNOWN", "u2": "TASK_GONE"}


async def test_state_json_lists_tasks_with_statuses(connect, backend):
    import json

    from tornado.httpclient import AsyncHTTPClient

    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    task = command_task(offer, "t-state", "sleep 30", cpus=0.5, mem=64)
    task["labels"] = {"labels": [{"key": "user", "value": "alice"}]}
    await s.accept([offer["id"]["value"]], [task])
    while (status := await s.update("t-state"))["state"] != "TASK_RUNNING":
        await s.ack(status)
    await s.ack(status)
    state = json.loads((await AsyncHTTPClient().fetch(f"{backend.url}/master/state")).body)
    fw = next(f for f in state["frameworks"] if f["id"] == s.framework_id)
    t = fw["tasks"][0]
    assert t["id"] == "t-state"
    assert t["framework_id"] == s.framework_id
    assert t["slave_id"] == offer["agent_id"]["value"]
    assert t["state"] == "TASK_RUNNING"
    assert t["resources"]["cpus"] == 0.5
    assert [x["state"] for x in t["statuses"]] == ["TASK_STARTING", "TASK_RUNNING"]
    assert t["labels"] == [{"key": "user", "value": "alice"}]
    agent = next(a for a in state["slaves"] if a["hostname"] == "agent-1")
    assert agent["used_resources"]["cpus"] == 0.5


async def test_missing_allocation_info_is_filled_in(connect, backend):
    # The master injects the offer's allocation_info into the operations (master.cpp).
    s = connect()
    await s.subscribe(framework_info(roles=["web"], capabilities=[{"type": "MULTI_ROLE"}]))
    offer = await _offer_from(s, "agent-1")
    task = command_task(offer, "t-noalloc", "sleep 30", cpus=0.1)
    for r in task["resources"]:
        del r["allocation_info"]
    await _running_task(s, offer, task)
    state = await backend.state()
    fw = next(f for f in state["frameworks"] if f["id"] == s.framework_id)
    assert [(t["id"], t["role"]) for t in fw["tasks"]] == [("t-noalloc", "web")]


async def test_allocation_info_of_another_role_is_task_error(connect):
    s = connect()
    await s.subscribe(framework_info(roles=["web"], capabilities=[{"type": "MULTI_ROLE"}]))
    offer = await _offer_from(s, "agent-1")
    task = command_task(offer, "t-otherrole", "sleep 30", cpus=0.1)
    for r in task["resources"]:
        r["allocation_info"] = {"role": "elsewhere"}
    await s.accept([offer["id"]["value"]], [task])
    status = await s.update("t-otherrole")
    assert status["state"] == "TASK_ERROR"
    assert status["reason"] == "REASON_TASK_INVALID"


async def _running_task(s, offer, task):
    await s.accept([offer["id"]["value"]], [task])
    tid = task["task_id"]["value"]
    while (status := await s.update(tid))["state"] != "TASK_RUNNING":
        assert status["state"] == "TASK_STARTING", status
        await s.ack(status)
    await s.ack(status)


async def test_command_user_runs_as_that_user(connect, backend):
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    nobody = pwd.getpwnam("nobody")
    s = connect()
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    task = command_task(offer, "t-nobody", "id -u > me; id -un >> me", cpus=0.1)
    task["command"]["user"] = "nobody"
    await s.accept([offer["id"]["value"]], [task])
    while (status := await s.update("t-nobody"))["state"] in ("TASK_STARTING", "TASK_RUNNING"):
        await s.ack(status)
    assert status["state"] == "TASK_FINISHED", status
    sandbox = backend.sandbox("agent-1", offer["agent_id"]["value"], s.framework_id, "t-nobody")
    assert open(os.path.join(sandbox, "me")).read() == f"{nobody.pw_uid}\nnobody\n"
    assert os.stat(sandbox).st_uid == nobody.pw_uid
