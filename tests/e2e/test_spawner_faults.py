"""MesosSpawner on bad days, each against a real hub and localmesos: capacity errors, waiting,
lost agents, master failover, and orphans left by a hub that died mid-spawn."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time

import pytest
import requests

from tests.e2e.harness import master_state
from tests.e2e.mesos_env import mesos_config, tasks_by_id

pytestmark = pytest.mark.e2e

_BASE = random.Random().randrange(30000, 32000, 100)
NO_GPU_CLUSTER = f"""
[[agent]]
hostname = "cpu-1"
resources = "cpus:4;mem:8192;ports:[{_BASE}-{_BASE + 29}]"
"""

SMALL_CLUSTER = f"""
[[agent]]
hostname = "cpu-1"
resources = "cpus:1;mem:2048;ports:[{_BASE + 30}-{_BASE + 59}]"
"""

AGENT_RESOURCES = f"cpus:2;mem:4096;ports:[{_BASE + 60}-{_BASE + 99}]"


def plain_config(master: str, homes, extra: str = "") -> str:
    """The e2e hub config for plain command tasks: no volumes (a default Mesos agent refuses to
    mount them into a task without an image); notebooks work in the host directory itself."""
    return mesos_config(master, homes, "c.MesosSpawner.volumes = []\n" + extra)


async def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _logged_in_get(base: str, user: str, path: str) -> tuple[int, str]:
    """GET a hub page as a person would: log in with the dummy authenticator, keep the cookie."""
    with requests.Session() as session:
        session.get(f"{base}/hub/login")
        session.post(
            f"{base}/hub/login",
            data={"username": user, "password": "x", "_xsrf": session.cookies.get("_xsrf")},
        )
        response = session.get(base + path, allow_redirects=False)
        return response.status_code, response.text


def task_states(state: dict) -> dict[str, str]:
    return {tid: t["state"] for tid, t in tasks_by_id(state).items()}


async def test_gpu_request_on_cluster_without_gpus_fails_fast_naming_gpus(
    hub_factory,
    localmesos_proc,
    homes,
    test_users,
):
    cluster = await localmesos_proc(NO_GPU_CLUSTER)
    hub = await hub_factory(plain_config(cluster.url, homes)).launch()
    user = test_users[0].name
    await hub.create_user(user)

    started = time.monotonic()
    code, body = await hub.start_server_response(user, options={"profile": "gpu"})
    if code in (201, 202):  # the failure may land just after the POST returned
        await wait_for(lambda: _server_gone(hub, user), 10, "the failed server to disappear")
    elapsed = time.monotonic() - started
    assert elapsed < 5, f"capacity failure took {elapsed:.1f}s"
    message = body.get("message", "") if isinstance(body, dict) else str(body)
    log = hub.log_text()
    assert "GPU" in message or "no agent has 1 GPU" in log
    assert "never start on this cluster" in (message + log)
    assert task_states(await master_state(cluster.url)) == {}


async def _server_gone(hub, user: str) -> bool:
    servers = (await hub.user_model(user)).get("servers") or {}
    return "" not in servers


async def test_busy_cluster_shows_waiting_progress_then_starts(
    hub_factory,
    localmesos_proc,
    homes,
    test_users,
):
    cluster = await localmesos_proc(SMALL_CLUSTER)
    hub = await hub_factory(
        plain_config(cluster.url, homes, "c.MesosSpawner.cpu_limit = 0.75")
    ).launch()
    first, second = test_users[0].name, test_users[1].name
    for user in (first, second):
        await hub.create_user(user)
    assert await hub.start_server(first) in (201, 202)
    await hub.wait_server_ready(first)

    assert await hub.start_server(second) == 202
    progress = asyncio.ensure_future(hub.progress(second))
    await asyncio.sleep(3)
    assert not progress.done()
    await hub.stop_server(first)
    events = await asyncio.wait_for(progress, 60)
    messages = [e.get("message", "") for e in events]
    assert any(m.startswith("Request queued") for m in messages), messages
    assert any("Waiting for 0.75 cpus" in m for m in messages), messages
    assert any("Offer accepted on agent cpu-1" in m for m in messages), messages
    assert events[-1].get("ready") is True


async def test_waiting_spawn_fails_at_start_timeout_saying_why_and_never_launches_late(
    hub_factory, localmesos_proc, homes, test_users
):
    cluster = await localmesos_proc(SMALL_CLUSTER)
    config = plain_config(cluster.url, homes, "c.MesosSpawner.cpu_limit = 0.75")
    hub = await hub_factory(config, start_timeout=8).launch()
    first, second = test_users[0].name, test_users[1].name
    for user in (first, second):
        await hub.create_user(user)
    assert await hub.start_server(first) in (201, 202)
    await hub.wait_server_ready(first)

    code, body = await hub.start_server_response(second)
    if code in (201, 202):
        await wait_for(lambda: _server_gone(hub, second), 20, "the spawn to give up")
    log = hub.log_text()
    assert "Gave up after 6 seconds: no offer could hold 0.75 cpus" in log, log[-3000:]
    # The withdrawn request must not launch once resources free up.
    await hub.stop_server(first)
    await asyncio.sleep(3)
    states = task_states(await master_state(cluster.url))
    assert len(states) == 1 and set(states.values()) == {"TASK_KILLED"}


async def test_agent_killed_poll_reports_stopped_with_reason(
    hub_factory,
    localmesos_proc,
    localmesos_agent_proc,
    homes,
    test_users,
):
    cluster = await localmesos_proc(
        None, extra_args=["--no-agents", "--agent-unreachable-timeout", "2"]
    )
    agent = await localmesos_agent_proc(cluster.url, "lonely-1", AGENT_RESOURCES)
    # The hub waits unreachable_grace_seconds (120 by default) for a partition to heal.
    extra = "c.MesosSpawner.poll_interval = 1\nc.MesosSpawner.unreachable_grace_seconds = 2"
    hub = await hub_factory(plain_config(cluster.url, homes, extra)).launch()
    user = test_users[0].name
    await hub.create_user(user)
    assert await hub.start_server(user) in (201, 202)
    await hub.wait_server_ready(user)

    agent.kill()
    await wait_for(lambda: _server_gone(hub, user), 45, "the hub to notice the lost agent")
    log = hub.log_text()
    assert "unreachable" in log.lower() or "lost" in log.lower()
    # The user sees why, on the page where they would start it again.
    code, text = await asyncio.to_thread(_logged_in_get, hub.url, user, f"/hub/spawn/{user}")
    assert code == 200
    assert "Your last server stopped: task unreachable" in text or "task lost" in text, text
    states = task_states(await master_state(cluster.url))
    assert set(states.values()) <= {"TASK_UNREACHABLE", "TASK_LOST"}


async def test_master_failover_with_notebooks_running_loses_nothing(
    hub_factory,
    localmesos_proc,
    localmesos_agent_proc,
    homes,
    test_users,
    zookeeper,
    unique_zk_path,
):
    zk = zookeeper.url(unique_zk_path)
    common = ["--no-agents", "--zk", zk, "--heartbeat-interval", "1"]
    leader = await localmesos_proc(None, extra_args=common)
    standby = await localmesos_proc(None, extra_args=common)
    await localmesos_agent_proc(zk, "ha-1", AGENT_RESOURCES, state_url=leader.url)
    hub = await hub_factory(plain_config(zk, homes, "c.MesosSpawner.poll_interval = 1")).launch()
    users = [u.name for u in test_users[:2]]
    for user in users:
        await hub.create_user(user)
        assert await hub.start_server(user) in (201, 202)
        await hub.wait_server_ready(user)
    before = await master_state(leader.url)
    framework_id = before["frameworks"][0]["id"]
    task_ids = set(tasks_by_id(before))
    assert len(task_ids) == 2

    leader.kill()

    async def recovered():
        try:
            state = await master_state(standby.url)
        except (AssertionError, OSError):
            return None
        fws = [f for f in state.get("frameworks", []) if f["id"] == framework_id]
        if fws and fws[0].get("active") and set(tasks_by_id(state)) == task_ids:
            return state
        return None

    state = await wait_for(recovered, 40, "the framework to re-subscribe to the new leader")
    assert all(t["state"] == "TASK_RUNNING" for t in tasks_by_id(state).values())
    await asyncio.sleep(3)  # several poll intervals: nothing may be declared stopped
    for user in users:
        model = await hub.user_model(user)
        assert model["servers"][""]["ready"], model
        code, _ = await hub.get_through_proxy(user, path="api/status")
        assert code == 200


async def test_hub_killed_mid_spawn_orphan_is_found_and_killed(
    hub_factory,
    localmesos_proc,
    localmesos_agent_proc,
    homes,
    test_users,
):
    cluster = await localmesos_proc(None, extra_args=["--no-agents"])
    agent = await localmesos_agent_proc(cluster.url, "slow-1", AGENT_RESOURCES)
    hub = await hub_factory(
        plain_config(cluster.url, homes, "c.MesosSpawner.orphan_grace_seconds = 2")
    ).launch()
    user = test_users[0].name
    await hub.create_user(user)

    # A stalled agent keeps the task in STAGING: the hub is still inside start() when it dies.
    os.kill(agent.proc.pid, signal.SIGSTOP)
    try:
        assert await hub.start_server(user) == 202

        async def staged():
            states = task_states(await master_state(cluster.url))
            return states if any(s == "TASK_STAGING" for s in states.values()) else None

        staged_states = await wait_for(staged, 30, "the task to be launched")
        hub.kill()
    finally:
        os.kill(agent.proc.pid, signal.SIGCONT)
    (orphan,) = staged_states

    await hub.restart()

    async def killed():
        states = task_states(await master_state(cluster.url))
        return states.get(orphan) == "TASK_KILLED"

    await wait_for(killed, 45, f"orphan {orphan} to be killed")
    log = hub.log_text()
    assert f"Killing orphan task {orphan}" in log


ONE_GPU_CLUSTER = f"""
[[agent]]
hostname = "gpu-1"
resources = "cpus:4;mem:8192;gpus:1;ports:[{_BASE + 100}-{_BASE + 129}]"
"""


async def test_hub_restart_with_the_only_gpu_in_use_a_gpu_spawn_waits_not_fails(
    hub_factory, localmesos_proc, homes, test_users
):
    cluster = await localmesos_proc(ONE_GPU_CLUSTER)
    config = plain_config(cluster.url, homes)
    hub = await hub_factory(config).launch()
    first, second = test_users[0].name, test_users[1].name
    for user in (first, second):
        await hub.create_user(user)
    assert await hub.start_server(first, options={"profile": "gpu"}) in (201, 202)
    await hub.wait_server_ready(first)

    hub.kill()  # the survivor keeps the only GPU
    await hub.restart(config + "\nc.MesosSpawner.start_timeout = 8\n")
    await hub.wait_server_ready(first, timeout=30)
    restarted_at = len(hub.log_text())

    code, body = await hub.start_server_response(second, options={"profile": "gpu"})
    if code in (201, 202):
        await wait_for(lambda: _server_gone(hub, second), 30, "the waiting spawn to give up")
    log = hub.log_text()[restarted_at:] + str(body)
    assert "never start" not in log, log[-3000:]
    assert "Gave up after 6 seconds" in log and "GPU" in log, log[-3000:]
    states = task_states(await master_state(cluster.url))
    assert list(states.values()).count("TASK_RUNNING") == 1  # only the survivor


async def test_typo_in_placement_strategy_fails_the_spawn_at_once_naming_it(
    hub_factory, localmesos_proc, homes, test_users
):
    cluster = await localmesos_proc(NO_GPU_CLUSTER)
    config = plain_config(cluster.url, homes, 'c.MesosSpawner.placement_strategy = "binpak"')
    hub = await hub_factory(config).launch()
    user = test_users[0].name
    await hub.create_user(user)
    started = time.monotonic()
    code, body = await hub.start_server_response(user)
    assert code >= 400, body
    assert time.monotonic() - started < 10
    assert "binpak" in hub.log_text() and "binpack" in hub.log_text()
    assert task_states(await master_state(cluster.url)) == {}


async def test_typo_with_check_config_stops_the_hub_at_start_naming_it(tmp_path):
    """With ``check_config(c)`` last in the config (as the example config has it), a typo in an
    enum-like trait stops the hub at start: nobody's spawn ever meets it."""
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        'c.JupyterHub.spawner_class = "mesos"\n'
        'c.MesosSpawner.mesos_master = "http://127.0.0.1:1"\n'
        'c.MesosSpawner.placement_strategy = "binpak"\n'
        "from mesosspawner import check_config\n"
        "check_config(c)\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jupyterhub",
        "-f",
        str(config),
        "--port=0",
        f"--JupyterHub.db_url=sqlite:///{tmp_path / 'hub.sqlite'}",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError("the hub started despite the typo") from None
    assert proc.returncode != 0
    text = out.decode(errors="replace")
    assert "placement_strategy" in text and "binpak" in text and "binpack" in text, text[-2000:]
