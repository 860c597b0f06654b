"""Who localmesos runs tasks as (issue 15 item 11): never root unless started with
``--allow-root-tasks``, and with ``--task-users`` only as the users named. localmesos has no
authentication, so without this anyone who reaches a localmesos that runs as root (the demo)
could run commands as root. A refusal is what a real master's ACLs answer: TASK_ERROR,
REASON_TASK_UNAUTHORIZED, from the master."""

from __future__ import annotations

import os

import pytest

from mesosspawner.localmesos.authorization import TaskUsers, pwd_lookup, refusal, runs_as
from mesosspawner.localmesos.testing import (
    RawScheduler,
    command_task,
    framework_info,
    start_cli,
    stop_cli,
)
from tests.services.cluster import CONFORMANCE_AGENTS

NOBODY_TASK = {"task_id": {"value": "t"}, "command": {"value": "id", "user": "nobody"}}


def docker_task(*params: tuple[str, str], privileged: bool = False) -> dict:
    docker = {"image": "lab/nb:1", "parameters": [{"key": k, "value": v} for k, v in params]}
    if privileged:
        docker["privileged"] = True
    return {
        "task_id": {"value": "t"},
        "command": {},
        "container": {"type": "DOCKER", "docker": docker},
    }


# ---------------------------------------------------------------------------- the rule (pure)


def test_who_a_task_runs_as():
    assert runs_as(NOBODY_TASK, "root") == ("nobody", "command.user")
    assert runs_as({"command": {}}, "alice") == ("alice", "the framework's user")
    assert runs_as(docker_task(("user", "1001:100")), "root")[0] == "1001"
    assert runs_as(docker_task(), "nobody")[0] is None  # the image's default user
    # The Mesos containerizer with an image runs as command.user, as a plain task does.
    gpu = {"command": {"user": "root"}, "container": {"type": "MESOS", "mesos": {"image": {}}}}
    assert runs_as(gpu, "alice") == ("root", "command.user")


@pytest.mark.parametrize(
    "task, framework_user, why",
    [
        ({"task_id": {"value": "t"}, "command": {"value": "id"}}, "root", "framework's user"),
        ({"task_id": {"value": "t"}, "command": {"user": "root"}}, "alice", "command.user"),
        (docker_task(), "alice", "the image's default user"),
        (docker_task(("user", "0:0")), "alice", "docker parameter user '0' is root"),
        (docker_task(("user", "root")), "alice", "docker parameter user 'root' is root"),
        (docker_task(("user", "1001"), privileged=True), "alice", "privileged"),
    ],
)
def test_root_is_refused_unless_allowed(task, framework_user, why):
    message = refusal(task, framework_user, TaskUsers(), pwd_lookup)
    assert message and why in message and "--allow-root-tasks" in message
    assert refusal(task, framework_user, TaskUsers(allow_root=True), pwd_lookup) is None


def test_task_users_name_the_only_users_tasks_run_as():
    demo = TaskUsers(patterns=("demo-*",))
    message = refusal(NOBODY_TASK, "root", demo, pwd_lookup)
    assert message and "'nobody'" in message and "demo-*" in message and "--task-users" in message
    fake = {"demo-ann": ("demo-ann", 1500)}
    task = {"task_id": {"value": "t"}, "command": {"user": "demo-ann"}}
    assert refusal(task, "root", demo, fake.get) is None
    # A Docker uid is judged by its name on this machine.
    assert (
        refusal(docker_task(("user", "1500:1500")), "root", demo, lambda u: ("demo-ann", 1500))
        is None
    )
    assert refusal(docker_task(("user", "1501")), "root", demo, lambda u: (None, 1501))


# ---------------------------------------------------------------------------- the master


async def _launch(s: RawScheduler, task_id: str, command: str, **fields) -> dict:
    offers = await s.offers()
    offer = next(o for o in offers if o["hostname"] == "agent-1")
    task = command_task(offer, task_id, command)
    task["command"].update(fields)
    await s.accept([offer["id"]["value"]], [task])
    return await s.update(task_id)


async def test_a_root_task_gets_task_error_and_a_users_task_runs(clusters):
    cluster = await clusters.in_process(CONFORMANCE_AGENTS, allow_root_tasks=False)
    s = RawScheduler(cluster.url)
    try:
        await s.subscribe(framework_info(user="root"))
        status = await _launch(s, "as-root", "id -u")
        assert status["state"] == "TASK_ERROR", status
        assert (
            status["reason"] == "REASON_TASK_UNAUTHORIZED" and status["source"] == "SOURCE_MASTER"
        )
        assert "as root" in status["message"] and "--allow-root-tasks" in status["message"]
        if os.geteuid() == 0:
            status = await _launch(s, "as-nobody", "id -u", user="nobody")
            assert status["state"] in ("TASK_STARTING", "TASK_RUNNING"), status
    finally:
        await s.close()


async def test_the_command_refuses_root_tasks_unless_told(tmp_path):
    proc, url = start_cli(["--port", "0", "--work-dir", str(tmp_path)], tmp_path / "lm.log")
    try:
        s = RawScheduler(url)
        await s.subscribe(framework_info(user="root"))
        offers = await s.offers()
        task = command_task(offers[0], "as-root", "id -u")
        await s.accept([offers[0]["id"]["value"]], [task])
        status = await s.update("as-root")
        assert status["state"] == "TASK_ERROR" and "--allow-root-tasks" in status["message"]
        await s.close()
    finally:
        stop_cli(proc)
