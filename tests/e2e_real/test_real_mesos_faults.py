"""MesosSpawner on bad days, on REAL Mesos 1.11.0: a request that can never fit, a killed agent,
master failover through ZooKeeper with the replicated log, and the orphan of a crashed hub.
The same scenarios as tests/e2e/test_spawner_faults.py, judged by the real master."""

from __future__ import annotations

import asyncio
import signal
import time

from tests.e2e.harness import master_state
from tests.e2e.mesos_env import mesos_config, spawner_state, start_ready, tasks_by_id
from tests.e2e.test_spawner_faults import _logged_in_get, _server_gone, task_states, wait_for
from tests.e2e_real.test_real_mesos_spawner import PLAIN

HUGE = """
c.MesosSpawner.profile_list.append(
    {"display_name": "Huge", "slug": "huge", "mesosspawner_override": {"cpu_limit": 64}}
)
"""
# A host volume on a task without an image: fits every offer, but a default agent (posix
# filesystem isolator) refuses it at launch.
VOLUME = """
c.MesosSpawner.profile_list.append(
    {{"display_name": "Volume", "slug": "volume", "mesosspawner_override": {{"volumes": [
        {{"host_path": {homes!r} + "/{{username}}", "container_path": "/work", "mode": "RW"}}
    ]}}}}
)
"""


async def _spawn_fails_fast(hub, user: str, profile: str) -> tuple[float, str]:
    started = time.monotonic()
    code, body = await hub.start_server_response(user, options={"profile": profile})
    if code in (201, 202):  # the failure may land just after the POST returned
        await wait_for(lambda: _server_gone(hub, user), 10, "the failed server to disappear")
    elapsed = time.monotonic() - started
    message = body.get("message", "") if isinstance(body, dict) else str(body)
    return elapsed, message


async def test_requests_that_never_fit_fail_within_5s_naming_what_is_missing(
    hub_factory, real_mesos, homes, test_users
):
    cluster = real_mesos()
    volume = VOLUME.format(homes=str(homes))
    hub = await hub_factory(mesos_config(cluster.url, homes, PLAIN + HUGE + volume)).launch()
    gpu_user, huge_user, volume_user = (u.name for u in test_users)
    for user in (gpu_user, huge_user, volume_user):
        await hub.create_user(user)

    elapsed, message = await _spawn_fails_fast(hub, gpu_user, "gpu")
    log = hub.log_text()
    assert elapsed <= 5, f"GPU request on a GPU-less real cluster took {elapsed:.1f}s to fail"
    assert "GPU" in message or "no agent has 1 GPU" in log, message
    assert "never start on this cluster" in (message + log)

    elapsed, message = await _spawn_fails_fast(hub, huge_user, "huge")
    log = hub.log_text()
    assert elapsed <= 5, f"a 64-cpu request took {elapsed:.1f}s to fail"
    assert "64 cpus" in (message + log), message
    assert task_states(await master_state(cluster.url)) == {}

    # Launched, refused by the real agent, and the person is told the agent's reason at once.
    elapsed, message = await _spawn_fails_fast(hub, volume_user, "volume")
    log = hub.log_text()
    assert elapsed <= 5, f"the refused volume took {elapsed:.1f}s to fail"
    assert "Volumes in ContainerInfo is not supported" in (message + log), message
    assert set(task_states(await master_state(cluster.url)).values()) == {"TASK_FAILED"}


async def test_partition_that_heals_keeps_the_server_then_killed_agent_stops_it_with_reason(
    hub_factory, real_mesos, homes, test_users
):
    cluster = real_mesos()
    # unreachable_grace_seconds: how long a partition may heal before the server counts as
    # stopped (120 s by default); short here, as the master's ping timeouts are (1 s x 3).
    extra = PLAIN + "c.MesosSpawner.poll_interval = 1\nc.MesosSpawner.unreachable_grace_seconds = 8"
    hub = await hub_factory(mesos_config(cluster.url, homes, extra)).launch()
    user = test_users[0].name
    await hub.create_user(user)
    task_id = (await start_ready(hub, user))["task_id"]
    agent = cluster.agent("plain-1")

    async def task_is(state: str) -> bool:
        return task_states(await master_state(cluster.url)).get(task_id) == state

    # A partition that heals: the stopped agent misses 3 pings, the master marks its task
    # UNREACHABLE; woken, the agent re-registers and the master reports the task RUNNING again.
    agent.send(signal.SIGSTOP)
    try:
        await wait_for(lambda: task_is("TASK_UNREACHABLE"), 20, "the task to become unreachable")
    finally:
        agent.send(signal.SIGCONT)
    await wait_for(lambda: task_is("TASK_RUNNING"), 30, "the task to come back RUNNING")
    await asyncio.sleep(2)  # two poll intervals
    assert (await spawner_state(hub, user))["task_id"] == task_id  # the same task, re-adopted
    assert (await hub.user_model(user))["servers"][""]["ready"]
    code, _ = await hub.get_through_proxy(user, path="api/status")
    assert code == 200
    assert "stopped: task" not in hub.log_text()

    # A killed agent does not come back: once the grace has passed, poll() reports the server
    # stopped, and the person sees why where they would start it again.
    agent.kill()
    await wait_for(lambda: _server_gone(hub, user), 45, "the hub to notice the lost agent")
    states = task_states(await master_state(cluster.url))
    assert states[task_id] in ("TASK_UNREACHABLE", "TASK_LOST"), states
    code, text = await asyncio.to_thread(_logged_in_get, hub.url, user, f"/hub/spawn/{user}")
    assert code == 200
    assert "Your last server stopped: task unreachable" in text or "task lost" in text, text


async def test_master_failover_through_zookeeper_loses_nothing(
    hub_factory, real_mesos, homes, test_users, zookeeper, unique_zk_path
):
    cluster = real_mesos(zk=zookeeper.url(unique_zk_path), masters=2)
    leader = cluster.master
    (standby,) = [m for m in cluster.masters if m is not leader]
    hub = await hub_factory(
        mesos_config(cluster.url, homes, PLAIN + "c.MesosSpawner.poll_interval = 1")
    ).launch()
    users = [u.name for u in test_users[:2]]
    for user in users:
        await hub.create_user(user)
    await asyncio.gather(*(start_ready(hub, user) for user in users))
    before = await master_state(leader.url)
    framework_id = before["frameworks"][0]["id"]
    task_ids = set(tasks_by_id(before))
    assert len(task_ids) == 2

    leader.kill()

    async def recovered():
        try:
            state = await master_state(standby.url, timeout=3)
        except (AssertionError, OSError):
            return None
        if state.get("pid") != state.get("leader"):
            return None
        fws = [f for f in state.get("frameworks", []) if f["id"] == framework_id]
        if fws and fws[0].get("active") and set(tasks_by_id(state)) == task_ids:
            return state
        return None

    state = await wait_for(recovered, 60, "the framework to re-subscribe to the new leader")
    assert all(t["state"] == "TASK_RUNNING" for t in tasks_by_id(state).values())
    await asyncio.sleep(3)  # several poll intervals: nothing may be declared stopped
    for user in users:
        model = await hub.user_model(user)
        assert model["servers"][""]["ready"], model
        code, _ = await hub.get_through_proxy(user, path="api/status")
        assert code == 200
    after = tasks_by_id(await master_state(standby.url))
    assert set(after) == task_ids  # 0 lost, 0 relaunched
    assert all(t["state"] == "TASK_RUNNING" for t in after.values())


async def test_orphan_of_a_crashed_hub_is_found_and_killed(
    hub_factory, real_mesos, homes, test_users, tmp_path
):
    cluster = real_mesos()
    # Both hubs are "the same hub" to Mesos: same framework id file, same hub id.
    shared = f"""
c.MesosSpawner.framework_id_file = {str(tmp_path / "framework-id.json")!r}
c.MesosSpawner.orphan_grace_seconds = 2
"""
    crashed = await hub_factory(mesos_config(cluster.url, homes, PLAIN + shared)).launch()
    orphan_owner, other = test_users[0].name, test_users[1].name
    await crashed.create_user(orphan_owner)
    orphan = (await start_ready(crashed, orphan_owner))["task_id"]
    framework_id = (await master_state(cluster.url))["frameworks"][0]["id"]
    crashed.kill()  # SIGKILL with a running notebook; its database goes with it

    fresh = await hub_factory(mesos_config(cluster.url, homes, PLAIN + shared)).launch()
    await fresh.create_user(other)
    # Its first spawn brings up the new hub's framework (no wait for the notebook itself).
    assert await fresh.start_server(other) in (201, 202)

    async def killed():
        states = task_states(await master_state(cluster.url))
        return states.get(orphan) == "TASK_KILLED"

    await wait_for(killed, 45, f"orphan {orphan} to be killed")
    assert f"Killing orphan task {orphan}" in fresh.log_text()
    state = await master_state(cluster.url)
    assert [f["id"] for f in state["frameworks"]] == [framework_id]
    kept = [t for t in task_states(state) if t != orphan]
    assert len(kept) == 1  # the new hub's own task is no orphan
    await fresh.wait_server_ready(other)
    assert task_states(await master_state(cluster.url))[kept[0]] == "TASK_RUNNING"
