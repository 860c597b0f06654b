"""MesosSpawner on bad days, against a real hub on localmesos and on REAL Mesos 1.11.0: waiting
for room, giving up, partitions that heal, agents that die, master failover through ZooKeeper,
and orphans of a hub that died. Each test faults its own cluster (``clusters``) and hub."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time

from tests.services.cluster import AgentSpec, lab_agents, port_block
from tests.services.e2e import (
    holds,
    mesos_config,
    server_gone,
    spawn_page,
    spawner_state,
    start_ready,
    user_tasks,
    wait_for,
)

_BASE = port_block()
SMALL = (AgentSpec("cpu-1", f"cpus:1;mem:2048;ports:[{_BASE}-{_BASE + 29}]"),)
ONE = (AgentSpec("lonely-1", f"cpus:2;mem:4096;ports:[{_BASE + 30}-{_BASE + 59}]"),)
ONE_GPU = (AgentSpec("gpu-1", f"cpus:4;mem:8192;gpus:1;ports:[{_BASE + 60}-{_BASE + 89}]"),)


async def test_busy_cluster_shows_waiting_progress_then_starts(
    mesos_kind, clusters, hub_factory, homes, new_user
):
    cluster = clusters(mesos_kind, SMALL)
    hub = await hub_factory(
        mesos_config(cluster.url, homes, "c.MesosSpawner.cpu_limit = 0.75")
    ).launch()
    first, second = (await new_user()).name, (await new_user()).name
    for user in (first, second):
        await hub.create_user(user)
    assert await hub.start_server(first) in (201, 202)
    await hub.wait_server_ready(first)

    assert await hub.start_server(second) == 202
    progress = asyncio.ensure_future(hub.progress(second))
    # Waiting, and saying so, for as long as the first notebook holds the cpus.

    async def waiting() -> bool:
        server = (await hub.user_model(second))["servers"][""]
        return not progress.done() and server["pending"] == "spawn" and not server["ready"]

    await holds(waiting, 3, "the second spawn waiting while the cpus are in use")
    await hub.stop_server(first)
    events = await asyncio.wait_for(progress, 60)
    messages = [e.get("message", "") for e in events]
    assert any(m.startswith("Request queued") for m in messages), messages
    assert any("Waiting for 0.75 cpus" in m for m in messages), messages
    assert any("Offer accepted on agent cpu-1" in m for m in messages), messages
    assert events[-1].get("ready") is True


async def test_waiting_spawn_fails_at_start_timeout_saying_why_and_never_launches_late(
    mesos_kind, clusters, hub_factory, homes, new_user
):
    cluster = clusters(mesos_kind, SMALL)
    # A short start_timeout for the waiting spawn; the first notebook may take its time to
    # answer on a loaded machine (http_timeout).
    extra = "c.MesosSpawner.cpu_limit = 0.75\nc.Spawner.http_timeout = 60"
    hub = await hub_factory(mesos_config(cluster.url, homes, extra), start_timeout=8).launch()
    first, second = (await new_user()).name, (await new_user()).name
    for user in (first, second):
        await hub.create_user(user)
    assert await hub.start_server(first) in (201, 202)
    await hub.wait_server_ready(first)

    code, body = await hub.start_server_response(second)
    if code in (201, 202):
        await wait_for(lambda: server_gone(hub, second), 20, "the spawn to give up")
        events = await hub.progress(second)
        shown = events[-1].get("message", "")
    else:
        shown = body.get("message", "") if isinstance(body, dict) else str(body)
    # What the person is shown says why, as the hub log does.
    assert "no offer could hold 0.75 cpus" in shown, shown
    assert "Gave up after 6 seconds: no offer could hold 0.75 cpus" in hub.log_text()
    # The withdrawn request must not launch once resources free up (offers come every 0.2 s
    # on localmesos, 1 s on real Mesos's default allocation interval).
    await hub.stop_server(first)

    async def nothing_for_second() -> bool:
        return user_tasks(await cluster.tasks(), second) == {}

    await holds(nothing_for_second, 3, "no task for the withdrawn request")
    tasks = await cluster.tasks()
    assert {t["state"] for t in user_tasks(tasks, first).values()} == {"TASK_KILLED"}


async def test_partition_that_heals_keeps_the_server_then_killed_agent_stops_it_with_reason(
    mesos_kind, clusters, hub_factory, homes, user
):
    cluster = await clusters.faultable(mesos_kind, ONE)
    # unreachable_grace_seconds: how long a partition may heal before the server counts as
    # stopped (120 s by default); short here, as the masters' unreachable timeouts are.
    grace = 6
    extra = f"c.MesosSpawner.poll_interval = 1\nc.MesosSpawner.unreachable_grace_seconds = {grace}"
    hub = await hub_factory(mesos_config(cluster.url, homes, extra)).launch()
    await hub.create_user(user.name)
    task_id = (await start_ready(hub, user.name))["task_id"]

    async def task_is(state: str) -> bool:
        return (await cluster.task_states()).get(task_id) == state

    # A partition that heals, held well past several polls (poll_interval 1 s) and for most of
    # the grace: the master marks the task UNREACHABLE, the hub keeps the server all along.
    await cluster.partition("lonely-1")
    try:
        await wait_for(lambda: task_is("TASK_UNREACHABLE"), 20, "the task to become unreachable")

        async def ready() -> bool:
            servers = (await hub.user_model(user.name)).get("servers") or {}
            return bool(servers.get("", {}).get("ready"))

        await holds(ready, grace * 2 / 3, "the server kept while its agent is partitioned")
    finally:
        await cluster.heal("lonely-1")
    await wait_for(lambda: task_is("TASK_RUNNING"), 30, "the task to come back RUNNING")
    assert (await spawner_state(hub, user.name))["task_id"] == task_id  # the same task
    code, _ = await hub.get_through_proxy(user.name, path="api/status")
    assert code == 200
    assert (await hub.user_model(user.name))["servers"][""]["ready"]

    # A killed agent does not come back: once the grace has passed, poll() reports the server
    # stopped, and the person sees why where they would start it again.
    await cluster.kill_agent("lonely-1")
    await wait_for(lambda: server_gone(hub, user.name), 45, "the hub to notice the lost agent")
    state = (await cluster.task_states())[task_id]
    why = {"TASK_UNREACHABLE": "task unreachable", "TASK_LOST": "task lost"}[state]
    assert f"Your last server stopped: {why}" in await spawn_page(hub, user.name)


async def test_server_stopped_during_a_partition_is_killed_when_it_heals(
    mesos_kind, clusters, hub_factory, homes, user
):
    """The person stops their server (JupyterHub calls ``stop()``) while its agent cannot be
    reached: the kill cannot complete then; once the partition heals the task is killed and
    the server is gone, its resources free."""
    cluster = await clusters.faultable(mesos_kind, ONE)
    extra = "c.MesosSpawner.poll_interval = 1\nc.MesosSpawner.unreachable_grace_seconds = 120"
    hub = await hub_factory(mesos_config(cluster.url, homes, extra)).launch()
    await hub.create_user(user.name)
    task_id = (await start_ready(hub, user.name))["task_id"]

    async def task_is(state: str) -> bool:
        return (await cluster.task_states()).get(task_id) == state

    await cluster.partition("lonely-1")
    try:
        await wait_for(lambda: task_is("TASK_UNREACHABLE"), 20, "the task to become unreachable")
        code, body = await hub.api("DELETE", f"/users/{user.name}/server")
        assert code in (202, 204), body
        assert await task_is("TASK_UNREACHABLE")  # nothing can kill it yet
    finally:
        await cluster.heal("lonely-1")
    await wait_for(lambda: task_is("TASK_KILLED"), 60, "the task to be killed after the heal")
    await wait_for(lambda: server_gone(hub, user.name), 60, "the server to be stopped")
    slaves = await cluster.slaves()
    assert all(s["used_resources"]["cpus"] == 0 for s in slaves), slaves


async def test_master_failover_with_notebooks_running_loses_nothing(
    mesos_kind, clusters, hub_factory, homes, new_user, zookeeper, unique_zk_path
):
    cluster = clusters(
        mesos_kind,
        ONE,
        zk=zookeeper.url(unique_zk_path),
        masters=2,
        localmesos_args=("--heartbeat-interval", "1", "--zk-session-timeout", "5"),
    )
    hub = await hub_factory(
        mesos_config(cluster.url, homes, "c.MesosSpawner.poll_interval = 1")
    ).launch()
    users = [(await new_user()).name for _ in range(2)]
    for user in users:
        await hub.create_user(user)
    await asyncio.gather(*(start_ready(hub, user) for user in users))
    leader = await cluster.leader_url()
    before = await cluster.state(leader)
    framework_id = before["frameworks"][0]["id"]
    task_ids = set(await cluster.tasks(leader))
    assert len(task_ids) == 2

    await cluster.kill_leader()
    (standby,) = [url for url in cluster.master_urls if url != leader]

    async def recovered():
        if await cluster.leader_url() != standby:
            return None
        state = await cluster.state(standby)
        fws = [f for f in state.get("frameworks", []) if f["id"] == framework_id]
        if fws and fws[0].get("active") and set(await cluster.tasks(standby)) == task_ids:
            return state
        return None

    await wait_for(recovered, 60, "the framework to re-subscribe to the new leader")
    after = await cluster.tasks(standby)
    assert set(after) == task_ids  # 0 lost, 0 relaunched
    assert all(t["state"] == "TASK_RUNNING" for t in after.values())

    async def all_ready() -> bool:
        models = [await hub.user_model(u) for u in users]
        return all((m.get("servers") or {}).get("", {}).get("ready") for m in models)

    # Several poll intervals (1 s) on the new leader: nothing may be declared stopped.
    await holds(all_ready, 3, "every server kept through the failover")
    for user in users:
        code, _ = await hub.get_through_proxy(user, path="api/status")
        assert code == 200


async def test_hub_killed_mid_spawn_orphan_is_found_and_killed(
    mesos_kind, clusters, hub_factory, homes, user
):
    cluster = clusters(mesos_kind, ONE, agent_processes=True)
    # The secrets go in the TaskInfo here: the task must outlive its hub to be an orphan, and
    # its one-time env file dies with the hub that serves it (the fetch would fail the task).
    extra = "c.MesosSpawner.orphan_grace_seconds = 2\nc.MesosSpawner.env_file_delivery = False"
    hub = await hub_factory(mesos_config(cluster.url, homes, extra)).launch()
    await hub.create_user(user.name)

    # A stalled agent keeps the task in STAGING: the hub is still inside start() when it dies
    # (at once: real Mesos marks a silent agent unreachable after 3 s).
    await cluster.partition("lonely-1")
    spawn = asyncio.ensure_future(hub.start_server(user.name))
    try:

        async def staged():
            states = await cluster.task_states()
            return states if any(s == "TASK_STAGING" for s in states.values()) else None

        (orphan,) = await wait_for(staged, 30, "the task to be launched", interval=0.05)
        hub.kill()
        assert not spawn.done() or spawn.exception() is not None  # no answer: start() ran
    finally:
        await cluster.heal("lonely-1")
        with contextlib.suppress(Exception):
            await spawn

    await hub.restart()

    async def killed():
        return (await cluster.task_states()).get(orphan) == "TASK_KILLED"

    await wait_for(killed, 45, f"orphan {orphan} to be killed")
    assert f"Killing orphan task {orphan}" in hub.log_text()


async def test_orphan_of_a_crashed_hub_is_found_and_killed_by_its_successor(
    mesos_kind, clusters, hub_factory, homes, new_user, tmp_path
):
    cluster = clusters(mesos_kind, ONE)
    # Both hubs are "the same hub" to Mesos: same framework id file, same hub id.
    shared = f"""
c.MesosSpawner.framework_id_file = {str(tmp_path / "framework-id.json")!r}
c.MesosSpawner.orphan_grace_seconds = 2
"""
    crashed = await hub_factory(mesos_config(cluster.url, homes, shared)).launch()
    orphan_owner, other = (await new_user()).name, (await new_user()).name
    await crashed.create_user(orphan_owner)
    orphan = (await start_ready(crashed, orphan_owner))["task_id"]
    framework_id = (await cluster.state())["frameworks"][0]["id"]
    crashed.kill()  # SIGKILL with a running notebook; its database goes with it

    fresh = await hub_factory(mesos_config(cluster.url, homes, shared)).launch()
    await fresh.create_user(other)
    # Its first spawn brings up the new hub's framework (no wait for the notebook itself).
    assert await fresh.start_server(other) in (201, 202)

    async def killed():
        return (await cluster.task_states()).get(orphan) == "TASK_KILLED"

    await wait_for(killed, 45, f"orphan {orphan} to be killed")
    assert f"Killing orphan task {orphan}" in fresh.log_text()
    state = await cluster.state()
    assert [f["id"] for f in state["frameworks"]] == [framework_id]
    await fresh.wait_server_ready(other)
    kept = user_tasks(await cluster.tasks(), other)  # the new hub's own task is no orphan
    assert [t["state"] for t in kept.values()] == ["TASK_RUNNING"]


async def test_hub_restart_with_the_only_gpu_in_use_a_gpu_spawn_waits_not_fails(
    mesos_kind, clusters, hub_factory, homes, new_user
):
    cluster = clusters(mesos_kind, ONE_GPU)
    config = mesos_config(cluster.url, homes)
    hub = await hub_factory(config).launch()
    first, second = (await new_user()).name, (await new_user()).name
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
        await wait_for(lambda: server_gone(hub, second), 30, "the waiting spawn to give up")
    log = hub.log_text()[restarted_at:] + str(body)
    assert "never start" not in log, log[-3000:]
    assert "Gave up after 6 seconds" in log and "GPU" in log, log[-3000:]
    states = await cluster.task_states()
    assert list(states.values()).count("TASK_RUNNING") == 1  # only the survivor


async def test_typo_in_placement_strategy_fails_the_spawn_at_once_naming_it(
    clusters, hub_factory, homes, user
):
    cluster = clusters("localmesos", lab_agents())
    config = mesos_config(cluster.url, homes, 'c.MesosSpawner.placement_strategy = "binpak"')
    hub = await hub_factory(config).launch()
    await hub.create_user(user.name)
    started = time.monotonic()
    code, body = await hub.start_server_response(user.name)
    assert code >= 400, body
    assert time.monotonic() - started < 10
    assert "binpak" in hub.log_text() and "binpack" in hub.log_text()
    assert await cluster.task_states() == {}


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
