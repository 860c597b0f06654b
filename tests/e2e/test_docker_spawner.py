"""A notebook in a real Docker container through the whole stack: JupyterHub -> MesosSpawner ->
the master (localmesos, or REAL Mesos 1.11.0 whose agent runs ``mesos-docker-executor``) -> the
Docker containerizer, with the lab's base notebook image pulled from a real local registry,
running as the user's uid/gid and writing into the user's host directory."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from pathlib import Path

import docker

from mesosspawner.images.registry import registry_digest
from tests.services.e2e import (
    agent_of,
    assert_notebook_writes_as_user,
    docker_notebook_config,
    mesos_config,
    start_ready,
)


def process_env(container) -> dict[str, str]:
    """The environment of the container's notebook process (read by root from the host)."""
    top = container.top(ps_args="-o pid,args")["Processes"]
    pid = next(
        p[0] for p in top if "jupyterhub-singleuser" in p[-1] and "start-notebook" not in p[-1]
    )
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(v.decode().split("=", 1) for v in raw if b"=" in v)


def container_of(docker_client, kind: str, task: dict):
    """The task's container: localmesos names it after the task; real Mesos's Docker
    containerizer names it ``mesos-<container id>``, the id being in the task's statuses."""
    if kind == "localmesos":
        (container,) = [
            c
            for c in docker_client.containers.list()
            if task["id"] in (c.name or "") or task["id"] in str(c.labels)
        ]
        return container
    ids = {
        st["container_status"]["container_id"]["value"]
        for st in task["statuses"]
        if st.get("container_status", {}).get("container_id")
    }
    assert len(ids) == 1, task["statuses"]
    return docker_client.containers.get(f"mesos-{ids.pop()}")


async def test_docker_notebook_pulled_by_digest_runs_and_writes_as_user(
    mesos_kind, clusters, hub_factory, homes, user, notebook_image, docker_client
):
    # Pinned by digest, as a lab pins every server's environment.
    registry, _, repo_tag = notebook_image.partition("/")
    repo, _, tag = repo_tag.rpartition(":")
    digest = await asyncio.to_thread(registry_digest, registry, repo, tag)
    assert digest and digest.startswith("sha256:")
    pinned = f"{registry}/{repo}@{digest}"
    cluster = clusters(mesos_kind, docker=True)
    extra = docker_notebook_config(pinned, homes, force_pull=True)
    hub = await hub_factory(mesos_config(cluster.url, homes, extra), start_timeout=240).launch()
    await hub.create_user(user.name)
    since = int(time.time()) - 1
    state = await start_ready(hub, user.name)

    master = await cluster.state()
    task = (await cluster.tasks())[state["task_id"]]
    assert task["state"] == "TASK_RUNNING"
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

    container = container_of(docker_client, cluster.kind, task)
    try:
        exit_code, out = container.exec_run("id")
        assert exit_code == 0
        assert f"uid={user.uid}" in out.decode() and f"gid={user.gid}" in out.decode(), out
        # Every result can name the environment that made it: in the notebook and the hub log.
        env = dict(v.split("=", 1) for v in container.attrs["Config"]["Env"])
        assert env["MESOSSPAWNER_IMAGE"] == pinned
        assert env["MESOSSPAWNER_IMAGE_DIGEST"] == digest
        assert pinned in hub.log_text()
        host_config = container.attrs["HostConfig"]
        if cluster.kind == "real":
            # Real Mesos puts hard limits on Docker tasks: 256 MB, and 0.25 cpus as CPU shares.
            assert host_config["Memory"] == 256 * 1024 * 1024
            assert host_config["CpuShares"] == 256
        # The API token reaches the notebook's process (the start script read the one-time env
        # file), but not the container's configuration nor the agent's `docker run` command line.
        assert "JUPYTERHUB_API_TOKEN" not in env, sorted(env)
        token = process_env(container)["JUPYTERHUB_API_TOKEN"]
        ps = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True)
        assert token not in ps.stdout
        # No new privileges and no capabilities, by default (docker_security_parameters).
        assert "no-new-privileges" in host_config["SecurityOpt"]
        assert host_config["CapDrop"] == ["ALL"]
        exit_code, out = container.exec_run(
            ["grep", "-E", "^(NoNewPrivs|CapEff|CapBnd)", "/proc/self/status"]
        )
        assert exit_code == 0
        status = dict(line.split(":\t") for line in out.decode().splitlines())
        assert status == {"NoNewPrivs": "1", "CapEff": "0" * 16, "CapBnd": "0" * 16}, status

        await assert_notebook_writes_as_user(hub, user, homes, "from-docker.txt")

        await hub.stop_server(user.name)
        tasks = await cluster.tasks()
        assert tasks[state["task_id"]]["state"] == "TASK_KILLED"
        assert container.id not in [c.id for c in docker_client.containers.list()]
    finally:  # a container that exited stays until the agent's --docker_remove_delay
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


async def test_gpu_profile_with_image_runs_as_the_users_uid_through_the_start_script(
    clusters, hub_factory, homes, user, notebook_image, docker_client
):
    """GPU notebooks use the Mesos containerizer with the image (the Docker containerizer has
    no GPUs). The person's name does not exist in the image: the image's start script starts
    as root, maps NB_UID/NB_GID and drops root. (The lab's GPU image is this base notebook plus
    NVIDIA variables; no GPU is present here, localmesos accounts the device.)"""
    # localmesos only: a default real agent refuses the Mesos containerizer with an image
    # (it needs --image_providers=docker and the filesystem/linux isolator).
    cluster = clusters("localmesos")
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
    await hub.create_user(user.name)
    state = await start_ready(hub, user.name, options={"profile": "gpu"})

    master = await cluster.state()
    task = (await cluster.tasks())[state["task_id"]]
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
    # Dropping root also set no_new_privs: no setuid binary in the image takes it back.
    for p in notebook:
        assert "NoNewPrivs:\t1" in Path(f"/proc/{p[0]}/status").read_text()
    # The token came by the one-time env file, which the start script read (as root) and
    # deleted; the container's configuration never had it.
    assert "JUPYTERHUB_API_TOKEN" in process_env(container)
    assert not any(v.startswith("JUPYTERHUB_API_TOKEN=") for v in container.attrs["Config"]["Env"])
    await assert_notebook_writes_as_user(hub, user, homes, "from-gpu.txt")

    await hub.stop_server(user.name)
    tasks = await cluster.tasks()
    assert tasks[state["task_id"]]["state"] == "TASK_KILLED"
