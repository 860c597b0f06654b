"""The CPU profile in the lab's notebook image on REAL Mesos's Docker containerizer: JupyterHub ->
MesosSpawner -> mesos-master -> mesos-agent (--containerizers=docker,mesos) -> the real
``mesos-docker-executor`` -> the real Docker engine, with the image pulled from the loopback
registry, running as the user's uid/gid and writing into the user's host directory."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess

import docker
import pytest

from mesosspawner.images.registry import registry_digest
from tests.e2e.harness import master_state
from tests.e2e.mesos_env import (
    agent_of,
    assert_notebook_writes_as_user,
    docker_notebook_config,
    mesos_config,
    start_ready,
    tasks_by_id,
)

pytestmark = pytest.mark.docker


def _container_of(docker_client, task: dict):
    """The Docker containerizer names a task's container ``mesos-<container id>``; the
    container id is in the task's status updates."""
    ids = {
        st["container_status"]["container_id"]["value"]
        for st in task["statuses"]
        if st.get("container_status", {}).get("container_id")
    }
    assert len(ids) == 1, task["statuses"]
    return docker_client.containers.get(f"mesos-{ids.pop()}")


async def test_cpu_profile_in_image_on_docker_containerizer_runs_and_writes_as_user(
    docker_engine, docker_client, notebook_image, hub_factory, real_mesos, homes, test_users
):
    registry, _, repo_tag = notebook_image.partition("/")
    repo, _, tag = repo_tag.rpartition(":")
    digest = await asyncio.to_thread(registry_digest, registry, repo, tag)
    assert digest and digest.startswith("sha256:")
    pinned = f"{registry}/{repo}@{digest}"
    cluster = real_mesos(docker=True)
    extra = docker_notebook_config(pinned, homes)
    hub = await hub_factory(mesos_config(cluster.url, homes, extra), start_timeout=180).launch()
    user = test_users[2]
    await hub.create_user(user.name)
    state = await start_ready(hub, user.name)

    master = await master_state(cluster.url)
    task = tasks_by_id(master)[state["task_id"]]
    assert task["state"] == "TASK_RUNNING"
    assert task["container"]["type"] == "DOCKER"
    assert task["container"]["docker"]["image"] == pinned
    assert agent_of(master, task)["hostname"] == "plain-1"
    code, status = await hub.get_through_proxy(user.name, path="api/status")
    assert code == 200, status

    container = _container_of(docker_client, task)
    try:
        exit_code, out = container.exec_run("id")
        assert exit_code == 0
        assert f"uid={user.uid}" in out.decode() and f"gid={user.gid}" in out.decode(), out
        # Real Mesos puts hard limits on Docker tasks: 256 MB, and 0.25 cpus as CPU shares.
        host_config = container.attrs["HostConfig"]
        assert host_config["Memory"] == 256 * 1024 * 1024
        assert host_config["CpuShares"] == 256
        env = dict(v.split("=", 1) for v in container.attrs["Config"]["Env"])
        assert env["MESOSSPAWNER_IMAGE"] == pinned
        assert env["MESOSSPAWNER_IMAGE_DIGEST"] == digest
        # The API token reaches the notebook but not the `docker run` command line on the agent.
        token = env.get("JUPYTERHUB_API_TOKEN")
        assert token, sorted(env)
        ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True).stdout
        assert token not in ps

        await assert_notebook_writes_as_user(hub, user, homes, "from-real-docker.txt")

        await hub.stop_server(user.name)
        tasks = tasks_by_id(await master_state(cluster.url))
        assert tasks[state["task_id"]]["state"] == "TASK_KILLED"
        assert container.id not in [c.id for c in docker_client.containers.list()]
    finally:  # a container that exited stays until the agent's --docker_remove_delay
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
