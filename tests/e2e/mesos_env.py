"""Shared pieces of the MesosSpawner end-to-end tests: the test cluster, the hub config,
and readers of /master/state and of task processes."""

from __future__ import annotations

import random
import re
from pathlib import Path

from tests.e2e.harness import pids_with_env

# Port ranges start at a random base per test process: a notebook left behind by an earlier or
# parallel run can then never answer for this run's notebook on the same port.
_BASE = random.Random().randrange(20000, 29000, 100)
CLUSTER = f"""
[[agent]]
hostname = "cpu-1"
resources = "cpus:4;mem:8192;disk:10000;ports:[{_BASE}-{_BASE + 29}]"
attributes = "rack:r1"
[[agent]]
hostname = "gpu-1"
resources = "cpus:4;mem:8192;disk:10000;gpus:2;ports:[{_BASE + 30}-{_BASE + 59}]"
attributes = "rack:r2;gpu_model:a100"
# A lab's GPU agents are configured for the GPU images (the Mesos containerizer with an image).
isolation = "filesystem/linux,docker/runtime"
image_providers = "docker"
[[agent]]
hostname = "spark-1"
resources = "cpus(spark):4;mem(spark):8192;cpus:0.5;mem:512;ports:[{_BASE + 60}-{_BASE + 99}]"
attributes = "rack:r3;spark_cluster:prod"
"""


def mesos_config(master: str, homes: Path, extra: str = "") -> str:
    return f"""
c.JupyterHub.spawner_class = "mesos"
c.MesosSpawner.mesos_master = {master!r}
c.MesosSpawner.ip = "127.0.0.1"
c.MesosSpawner.cpu_limit = 0.25
c.MesosSpawner.mem_limit = "256M"
c.MesosSpawner.kill_grace_seconds = 3
c.MesosSpawner.notebook_dir = {str(homes)!r} + "/{{username}}"
# No volumes: plain command tasks run on the agent's own filesystem, and a default Mesos agent
# refuses volumes on them. Tests with images add theirs in ``extra``.
c.MesosSpawner.volumes = []
c.MesosSpawner.profile_list = [
    {{"display_name": "CPU", "slug": "cpu", "default": True}},
    {{"display_name": "GPU", "slug": "gpu", "mesosspawner_override": {{"gpus": 1}}}},
    {{"display_name": "Spark", "slug": "spark", "mesosspawner_override": {{
        "role": "spark", "cpu_limit": 2, "mem_limit": "1G",
        "spark_master": "mesos://zk://127.0.0.1:2181/mesos",
        "spark_executor_image": "registry.example/spark-executor:3.5.3",
        "spark_role": "spark"}}}},
]
{extra}
"""


def docker_notebook_config(image: str, homes: Path, *, force_pull: bool = False) -> str:
    """Hub config lines for notebooks from ``image`` in Mesos's Docker containerizer, each in
    the person's home directory under ``homes``, mounted as ``/home/jovyan/work``."""
    pull = "c.MesosSpawner.force_pull_image = True\n" if force_pull else ""
    return f"""
c.MesosSpawner.image = {image!r}
c.MesosSpawner.containerizer = "docker"
{pull}c.MesosSpawner.network_mode = "host"
c.MesosSpawner.cmd = ["jupyterhub-singleuser"]
c.MesosSpawner.environment = {{}}
c.MesosSpawner.notebook_dir = "/home/jovyan/work"
c.MesosSpawner.volumes = [
    {{"host_path": {str(homes)!r} + "/{{username}}", "container_path": "/home/jovyan/work",
      "mode": "RW"}}
]
"""


def tasks_by_id(state: dict) -> dict[str, dict]:
    """Every task of every framework, running, unreachable or completed (state.json splits
    them; real Mesos lists TASK_UNREACHABLE ones only under ``unreachable_tasks``)."""
    out = {}
    for fw in state["frameworks"] + state.get("completed_frameworks", []):
        for task in fw.get("completed_tasks", []) + fw.get("unreachable_tasks", []) + fw["tasks"]:
            out[task["id"]] = dict(task, framework=fw)
    return out


def agent_of(state: dict, task: dict) -> dict:
    return next(a for a in state["slaves"] if a["id"] == task["slave_id"])


async def spawner_state(hub, user: str, name: str = "") -> dict:
    code, model = await hub.api("GET", f"/users/{user}?include_stopped_servers")
    assert code == 200, model
    server = model["servers"][name]
    return server.get("state") or {}


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(v.decode(errors="replace").split("=", 1) for v in raw if b"=" in v)


def task_pids(task_id: str) -> list[int]:
    """The task's own processes, on localmesos or real Mesos.

    localmesos sets MESOS_TASK_ID. Real Mesos's command executor hands its own environment on
    to the task, where MESOS_EXECUTOR_ID is the task id; the executor itself carries that too,
    so only processes that also have the task's environment (JUPYTERHUB_API_URL) count.
    """
    pattern = re.escape(task_id)
    pids = pids_with_env("MESOS_TASK_ID", pattern)
    if pids:
        return pids
    found = []
    for pid in sorted(pids_with_env("MESOS_EXECUTOR_ID", pattern)):
        try:
            if "JUPYTERHUB_API_URL" in _environ(pid):
                found.append(pid)
        except OSError:
            continue
    return found


def task_env(task_id: str) -> dict[str, str]:
    pids = task_pids(task_id)
    assert pids, f"no process of task {task_id}"
    return _environ(pids[0])


def proc_ids(task_id: str) -> tuple[int, int]:
    pids = task_pids(task_id)
    assert pids, f"no process of task {task_id}"
    status = Path(f"/proc/{pids[0]}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    gid = int(next(line for line in status.splitlines() if line.startswith("Gid:")).split()[1])
    return uid, gid


async def start_ready(hub, user: str, name: str = "", options: dict | None = None) -> dict:
    code = await hub.start_server(user, name, options)
    assert code in (201, 202), code
    await hub.wait_server_ready(user, name)
    return await spawner_state(hub, user, name)


async def assert_notebook_writes_as_user(hub, user, homes: Path, filename: str) -> None:
    """A file written through the notebook's contents API lands in the user's {username}
    directory on the host, owned by the user's uid/gid (never root)."""
    code, model = await hub.request_through_proxy(
        user.name,
        method="PUT",
        path=f"api/contents/{filename}",
        json={"type": "file", "format": "text", "content": "written by the notebook"},
    )
    assert code == 201, model
    written = homes / user.name / filename
    assert (written.stat().st_uid, written.stat().st_gid) == (user.uid, user.gid)
