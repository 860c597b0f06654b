"""The GPU queue through a real hub, on a cluster with ONE GPU of its own, on localmesos and on
REAL Mesos 1.11.0 (which accounts ``gpus:1`` on an agent without the nvidia isolator): people
waiting see their place and an estimate in the progress stream, the next in line starts within
seconds of a GPU coming free, a heavier user waits behind a lighter one of an equal-share group,
and an idle GPU server is culled after a warning, its GPU going to the head of the queue."""

from __future__ import annotations

import asyncio
import re
import time

from tests.services.cluster import AgentSpec, port_block
from tests.services.e2e import (
    ProgressFollower,
    add_to_group,
    logged_in_get,
    mesos_config,
    start_ready,
    user_tasks,
    wait_for,
)

_BASE = port_block()
ONE_GPU = (AgentSpec("gpu-1", f"cpus:4;mem:8192;gpus:1;ports:[{_BASE}-{_BASE + 49}]"),)
# "Within a few seconds": offers come every 0.2 s on localmesos, every second on real Mesos.
HANDOFF_SECONDS = 5.0


def queue_config(cluster_url: str, homes, extra: str = "", idle_timeout: float = 3600) -> str:
    """The hub's config: a GPU profile with an idle limit (the estimate's deadline), quick
    polls and queue looks, and spawn requests that answer 202 at once while they wait."""
    return mesos_config(
        cluster_url,
        homes,
        f"""
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 1}}
c.MesosSpawner.poll_interval = 1
c.MesosSpawner.gpu_queue_tick = 0.5
c.MesosSpawner.profile_list = [
    {{"display_name": "CPU", "slug": "cpu", "default": True}},
    {{"display_name": "GPU", "slug": "gpu",
      "mesosspawner_override": {{"gpus": 1, "gpu_idle_timeout": {idle_timeout}}}}},
]
{extra}
""",
    )


async def gpu_task_of(cluster, user: str) -> dict | None:
    """The user's active notebook task on the cluster, if any."""
    for task in user_tasks(await cluster.tasks(), user).values():
        if task["state"] in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"):
            return task
    return None


async def ask(hub, user: str, name: str = "") -> ProgressFollower:
    """Ask for a GPU server through the REST API; it must wait (202), its progress followed."""
    code = await hub.start_server(user, name, {"profile": "gpu"})
    assert code == 202, f"{user}/{name}: expected the spawn to wait, got {code}"
    return ProgressFollower(hub, user, name).start()


async def test_three_people_one_gpu_positions_estimates_and_handoff(
    mesos_kind, clusters, hub_factory, homes, new_user
):
    cluster = clusters(mesos_kind, ONE_GPU)
    hub = await hub_factory(queue_config(cluster.url, homes), start_timeout=180).launch()
    first, second, third = [(await new_user()).name for _ in range(3)]
    for user in (first, second, third):
        await hub.create_user(user)
    await start_ready(hub, first, options={"profile": "gpu"})

    waiting_2nd = await ask(hub, second)
    line = await waiting_2nd.wait_message(r"1st in the GPU queue", 30)
    # The only GPU server is idle-limited to 60 min, so the next one starts within the hour.
    assert re.search(r"1st in the GPU queue, about (\d+ min|1 h)", line), line
    waiting_3rd = await ask(hub, third)
    line = await waiting_3rd.wait_message(r"2nd in the GPU queue", 30)
    assert re.search(r"2nd in the GPU queue, about \d+ (min|h)", line), line
    assert await gpu_task_of(cluster, second) is None and await gpu_task_of(cluster, third) is None

    # The first stops: the second starts within seconds (its task is on the agent); the third
    # moves up to 1st.
    await hub.stop_server(first)
    freed = time.monotonic()
    await wait_for(lambda: gpu_task_of(cluster, second), 30, f"{second}'s task")
    handoff = time.monotonic() - freed
    assert handoff <= HANDOFF_SECONDS, f"the GPU took {handoff:.1f}s to reach the queue's head"
    assert await gpu_task_of(cluster, third) is None
    await waiting_3rd.wait_message(r"1st in the GPU queue", 30)
    await hub.wait_server_ready(second, timeout=60)

    await hub.stop_server(second)
    await wait_for(lambda: gpu_task_of(cluster, third), 30, f"{third}'s task")
    await hub.wait_server_ready(third, timeout=60)
    for follower in (waiting_2nd, waiting_3rd):
        await follower.aclose()


async def test_heavier_user_waits_behind_a_lighter_one_of_an_equal_share_group(
    mesos_kind, clusters, hub_factory, homes, new_user
):
    cluster = clusters(mesos_kind, ONE_GPU)
    extra = """
c.MesosSpawner.gpu_groups = {"red": {"share": 1}, "blue": {"share": 1}}
c.MesosSpawner.gpu_user_quota = 2
"""
    hub = await hub_factory(queue_config(cluster.url, homes, extra), start_timeout=180).launch()
    heavy, light = (await new_user()).name, (await new_user()).name
    for user in (heavy, light):
        await hub.create_user(user)
    await add_to_group(hub, "red", [heavy])
    await add_to_group(hub, "blue", [light])

    # The heavy one holds the GPU (their group's usage grows) and asks for a second server
    # first; the light one asks after them.
    await start_ready(hub, heavy, "one", options={"profile": "gpu"})
    heavy_waits = await ask(hub, heavy, "two")
    await heavy_waits.wait_message(r"1st in the GPU queue", 30)
    light_waits = await ask(hub, light)
    await light_waits.wait_message(r"1st in the GPU queue", 30)
    await heavy_waits.wait_message(r"2nd in the GPU queue", 30)

    await hub.stop_server(heavy, "one")
    await wait_for(lambda: gpu_task_of(cluster, light), 30, f"{light}'s task")
    tasks = user_tasks(await cluster.tasks(), heavy)
    assert [t["state"] for t in tasks.values()] == ["TASK_KILLED"], tasks  # "two" still waits
    await heavy_waits.wait_message(r"1st in the GPU queue", 30)
    for follower in (heavy_waits, light_waits):
        await follower.aclose()


async def test_idle_gpu_server_is_culled_after_a_warning_and_its_gpu_goes_to_the_queue(
    mesos_kind, clusters, hub_factory, homes, new_user
):
    cluster = clusters(mesos_kind, ONE_GPU)
    # Idle for 12 s is too long for a GPU server here; the owner is warned 6 s before, on the
    # hub's pages.
    extra = """
c.MesosSpawner.gpu_cull_warning_seconds = 6
from mesosspawner.gpuqueue.service.hubconfig import show_gpu_notices
show_gpu_notices(c)
"""
    config = queue_config(cluster.url, homes, extra, idle_timeout=12)
    hub = await hub_factory(config, start_timeout=180).launch()
    idler, waiter = (await new_user()).name, (await new_user()).name
    for user in (idler, waiter):
        await hub.create_user(user)
    await start_ready(hub, idler, options={"profile": "gpu"})
    idle_task = (await gpu_task_of(cluster, idler))["id"]
    waits = await ask(hub, waiter)
    await waits.wait_message(r"1st in the GPU queue, (about|less)", 30)

    # The warning, where the person sees it: at the top of the hub's pages.
    async def warned() -> str | None:
        code, page = await asyncio.to_thread(logged_in_get, hub.url, idler, "/hub/home")
        match = re.search(r"Your GPU default server will be stopped in [^.<]+", page)
        return match.group(0) if code == 200 and match else None

    warning = await wait_for(warned, 30, "the cull warning on the idler's home page")
    warned_at = time.monotonic()
    assert "because it has not been used for" in warning, warning

    async def culled() -> bool:
        return (await cluster.task_states()).get(idle_task) == "TASK_KILLED"

    await wait_for(culled, 30, "the idle GPU server to be culled")
    culled_at = time.monotonic()
    assert culled_at - warned_at >= 3, "culled too soon after the warning"
    await wait_for(lambda: gpu_task_of(cluster, waiter), HANDOFF_SECONDS + 5, "the waiter's task")
    await hub.wait_server_ready(waiter, timeout=60)

    # The idler learns why, on the spawn page; and the hub's metrics count the cull.
    async def told() -> bool:
        code, page = await asyncio.to_thread(logged_in_get, hub.url, idler, "/hub/spawn")
        return code == 200 and "stopped by the GPU culler" in page

    await wait_for(told, 30, "the cull's reason on the idler's spawn page")
    await waits.aclose()
