"""A notebook in a real Docker container through the whole stack: JupyterHub -> MesosSpawner ->
localmesos -> Docker containerizer, with the lab's base notebook image pulled from a real local
registry, running as the user's uid/gid."""

from __future__ import annotations

import asyncio
import time

import pytest

from mesosspawner.images.registry import registry_digest
from tests.e2e.harness import master_state
from tests.e2e.mesos_env import (
    CLUSTER,
    agent_of,
    assert_notebook_writes_as_user,
    docker_notebook_config,
    mesos_config,
    start_ready,
    tasks_by_id,
)

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


async def test_docker_notebook_runs_as_user_and_writes_as_user(
    hub_factory, localmesos_proc, homes, test_users, notebook_image, docker_client
):
    # Pinned by digest, as a lab pins every server's environment.
    registry, _, repo_tag = notebook_image.partition("/")
    repo, _, tag = repo_tag.rpartition(":")
    digest = await asyncio.to_thread(registry_digest, registry, repo, tag)
    assert digest and digest.startswith("sha256:")
    pinned = f"{registry}/{repo}@{digest}"
    cluster = await localmesos_proc(CLUSTER)
    extra = docker_notebook_config(pinned, homes, force_pull=True)
    hub = await hub_factory(mesos_config(cluster.url, homes, extra), start_timeout=240).launch()
    user = test_users[2]
    await hub.create_user(user.name)
    since = int(time.time()) - 1
    state = await start_ready(hub, user.name)

    master = await master_state(cluster.url)
    task = tasks_by_id(master)[state["task_id"]]
    assert task["container"]["type"] == "DOCKER"
    assert task["container"]["docker"]["image"] == pinned
    assert agent_of(master, task)["hostname"] == "cpu-1"
    # The image came from the registry: the engine pulled exactly the pinned reference.
    assert task["container"]["docker"]["force_pull_image"] is True
    events = await asyncio.to_thread(
        lambda: list(
            docker_client.events(
                since=since,
                until=int(time.time()) + 1,
                decode=True,
                filters={"type": "image", "event": "pull"},
            )
        )
    )
    pulled = [e.get("id") or e.get("Actor", {}).get("ID") for e in events]
    assert pinned in pulled, pulled

    code, status = await hub.get_through_proxy(user.name, path="api/status")
    assert code == 200, status

    (container,) = [
        c
        for c in docker_client.containers.list()
        if state["task_id"] in (c.name or "") or state["task_id"] in str(c.labels)
    ]
    exit_code, out = container.exec_run("id")
    assert exit_code == 0
    assert f"uid={user.uid}" in out.decode() and f"gid={user.gid}" in out.decode(), out
    # Every result can name the environment that made it: in the notebook and the hub log.
    env = dict(v.split("=", 1) for v in container.attrs["Config"]["Env"])
    assert env["MESOSSPAWNER_IMAGE"] == pinned
    assert env["MESOSSPAWNER_IMAGE_DIGEST"] == digest
    assert pinned in hub.log_text()

    await assert_notebook_writes_as_user(hub, user, homes, "from-docker.txt")

    await hub.stop_server(user.name)
    tasks = tasks_by_id(await master_state(cluster.url))
    assert tasks[state["task_id"]]["state"] == "TASK_KILLED"
    assert container.id not in [c.id for c in docker_client.containers.list()]


async def test_gpu_profile_with_image_runs_as_the_users_uid_through_the_start_script(
    hub_factory, localmesos_proc, homes, test_users, notebook_image, docker_client
):
    """GPU notebooks use the Mesos containerizer with the image (the Docker containerizer has
    no GPUs). The person's name does not exist in the image: the image's start script starts
    as root, maps NB_UID/NB_GID and drops root. (The lab's GPU image is this base notebook plus
    NVIDIA variables; no GPU is present here, localmesos accounts the device.)"""
    cluster = await localmesos_proc(CLUSTER)
    extra = f"""
c.MesosSpawner.image = {notebook_image!r}
c.MesosSpawner.cmd = ["jupyterhub-singleuser"]
c.MesosSpawner.environment = {{}}
c.MesosSpawner.notebook_dir = "/work"
c.MesosSpawner.volumes = [
    {{"host_path": {str(homes)!r} + "/{{username}}", "container_path": "/work", "mode": "RW"}}
]
"""
    hub = await hub_factory(mesos_config(cluster.url, homes, extra), start_timeout=240).launch()
    user = test_users[1]
    await hub.create_user(user.name)
    state = await start_ready(hub, user.name, options={"profile": "gpu"})

    master = await master_state(cluster.url)
    task = tasks_by_id(master)[state["task_id"]]
    assert task["container"]["type"] == "MESOS"
    assert task["container"]["mesos"]["image"]["docker"]["name"] == notebook_image
    assert task["resources"]["gpus"] == 1
    assert agent_of(master, task)["hostname"] == "gpu-1"

    code, status = await hub.get_through_proxy(user.name, path="api/status")
    assert code == 200, status

    (container,) = [
        c
        for c in docker_client.containers.list()
        if state["task_id"] in (c.name or "") or state["task_id"] in str(c.labels)
    ]
    # tini (the image's init) and the start script begin as root; the notebook must not.
    top = container.top(ps_args="-ww -o pid,uid,gid,args")["Processes"]
    notebook = [
        p for p in top if "jupyterhub-singleuser" in p[-1] and "start-notebook" not in p[-1]
    ]
    assert notebook, top
    assert all((int(p[1]), int(p[2])) == (user.uid, user.gid) for p in notebook), top
    await assert_notebook_writes_as_user(hub, user, homes, "from-gpu.txt")

    await hub.stop_server(user.name)
    tasks = tasks_by_id(await master_state(cluster.url))
    assert tasks[state["task_id"]]["state"] == "TASK_KILLED"
