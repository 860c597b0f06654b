"""A notebook's API token is nowhere a stranger can read it (issue 15 item 1): not in what Mesos
shows of its task, not in its sandbox, not on the agent's process list. For each kind of task
(plain command, Docker containerizer, Mesos containerizer with an image), while it runs and
after it stops.

Where real Mesos 1.11 shows things (an agent's ``/state``, the operator API's ``GET_STATE``,
``GET_EXECUTORS`` and ``GET_TASKS`` on master and agent, every sandbox file through
``/files/browse`` and ``/files/download``, ``ps -eww``), each check runs on the real cluster.
localmesos has none of the agent's endpoints: there the master's ``/state``, every file of the
sandbox on disk and ``ps -eww`` are read, and ``docker inspect`` for tasks in containers.

Every check has a positive control that finds a planted marker the same way, so a check that
finds nothing proves something: a plain variable (``MSS_MARK``) travels in the TaskInfo as the
token used to; the server's name (in the task's name and labels) is in every view of the task; an
argument of the notebook's command is on ``ps``; a file planted in the sandbox is listed and
downloaded. The master's ``GET_EXECUTORS`` lists only custom executors, which notebooks never
have: its control is that it answers for this master, and it is empty.

The Mesos containerizer with an image cannot start on this machine's real agents (the kernel has
no /proc/sysrq-trigger, see test_real_gpu_image.py): on real Mesos that kind is checked while its
image is pulled and provisioned and after the container fails, by the variable's name (the token
itself never reaches a process there); any env file left in its failed sandbox holds a token the
hub has revoked. The full check of that kind runs on localmesos.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from tornado.httpclient import AsyncHTTPClient

from mesosspawner.taskinfo import ENV_FILE_NAME
from tests.services.cluster import AgentSpec, port_block, release_port_block
from tests.services.docker import find_container
from tests.services.e2e import mesos_config, wait_for

pytestmark = pytest.mark.timeout(1800)

KINDS = ("plain", "docker", "mesos-image")
TOKEN_NAMES = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
ENV_MARK = "mssmark-env-" + secrets.token_hex(6)  # a plain variable: in the TaskInfo
ARG_MARK = "mssmark-arg-" + secrets.token_hex(6)  # an argument of the notebook: on ps
FILE_MARK = "mssmark-file-" + secrets.token_hex(6)  # a file planted in the sandbox
# Which planted marker each view shows (the token would be found the same way).
SHOWS_ENV = {"agent GET_STATE", "agent GET_EXECUTORS", "docker inspect"}


# ---------------------------------------------------------------------------- the cluster


@pytest.fixture(scope="module")
def cluster(mesos_kind, module_clusters, tmp_path_factory):
    """Plain and Docker notebooks on cpu-1, image notebooks (the GPU profile) on an agent set up
    for images: real Mesos's Docker containerizer and image provider, or localmesos's."""
    if os.geteuid() != 0:
        pytest.skip("notebooks run as other users and the linux launcher needs root")
    if mesos_kind == "localmesos":
        # GPU images start as root and drop to the person (image_starts_as_root): the test
        # cluster allows root's tasks, as a GPU lab's ACLs would for this start script.
        yield module_clusters("localmesos")  # lab_agents(): gpu-1 runs images
        return
    base = port_block()
    store = tmp_path_factory.mktemp("docker-store")
    agents = (
        AgentSpec("cpu-1", f"cpus:4;mem:8192;disk:10000;ports:[{base}-{base + 29}]", "rack:r1"),
        AgentSpec(
            "gpu-img",
            f"cpus:2;mem:3072;disk:10000;gpus:1;ports:[{base + 30}-{base + 59}]",
            "rack:r3",
            real_flags=(
                "--launcher=linux",
                "--isolation=filesystem/linux,docker/runtime,posix/cpu,posix/mem",
                "--image_providers=docker",
                f"--docker_store_dir={store}",
                "--image_provisioner_backend=copy",
            ),
        ),
    )
    yield module_clusters("real", agents, docker=True)
    release_port_block(base)


@pytest.fixture(scope="module")
def hub(cluster, module_hub_factory, homes, notebook_image, notebook_env):
    """One hub, a profile per kind of task. MSS_MARK is a plain variable; the notebook's
    command line carries ARG_MARK (a harmless setting)."""
    container = {
        "image": notebook_image,
        "cmd": ["jupyterhub-singleuser"],
        "notebook_dir": "/tmp",
        "environment": {"MSS_MARK": ENV_MARK},
    }
    profiles = [
        {"display_name": "plain", "slug": "plain", "default": True},
        {"display_name": "docker", "slug": "docker", "mesosspawner_override": container},
        {
            "display_name": "image (GPU)",
            "slug": "mesos-image",
            "mesosspawner_override": {**container, "gpus": 1, "start_timeout": 600},
        },
    ]
    plain_env = {"PATH": f"{notebook_env}:/usr/bin:/bin", "MSS_MARK": ENV_MARK}
    extra = f"""
c.MesosSpawner.environment = {plain_env!r}
c.MesosSpawner.args = ["--ServerApp.custom_display_url=http://{ARG_MARK}/"]
c.MesosSpawner.profile_list = {profiles!r}
c.MesosSpawner.http_timeout = 240
"""
    config = mesos_config(cluster.url, homes, extra)
    return module_hub_factory(config, start_timeout=600).launch_blocking(timeout=120)


# ---------------------------------------------------------------------------- reading views


async def _get(url: str, method: str = "GET", body: dict | None = None) -> str:
    response = await AsyncHTTPClient().fetch(
        url,
        method=method,
        body=None if body is None else json.dumps(body),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        request_timeout=30,
        raise_error=False,
    )
    assert response.code == 200, f"{method} {url}: {response.code} {response.body[:300]!r}"
    return response.body.decode(errors="replace")


def _agent_url(cluster, hostname: str) -> str:
    return f"http://127.0.0.1:{cluster.agent(hostname).port}"


async def _operator(url: str, call: str) -> str:
    return await _get(f"{url}/api/v1", "POST", {"type": call})


async def _sandbox_files_real(agent: str, directory: str) -> dict[str, str]:
    """Every file under ``directory`` as the agent serves it: /files/browse, /files/download."""
    files: dict[str, str] = {}
    todo = [directory]
    while todo:
        path = todo.pop()
        for entry in json.loads(await _get(f"{agent}/files/browse?path={quote(path)}")):
            if entry["mode"].startswith("d"):
                todo.append(entry["path"])
            else:
                files[entry["path"]] = await _get(
                    f"{agent}/files/download?path={quote(entry['path'])}"
                )
    return files


def _sandbox_files_disk(directory: str) -> dict[str, str]:
    files = {}
    for path in Path(directory).rglob("*"):
        if path.is_file():
            files[str(path)] = path.read_bytes().decode(errors="replace")
    return files


def _executor_directory(agent_state: dict, task_id: str) -> str | None:
    for fw in agent_state["frameworks"] + agent_state.get("completed_frameworks", []):
        for ex in fw.get("executors", []) + fw.get("completed_executors", []):
            tasks = ex.get("tasks", []) + ex.get("completed_tasks", []) + ex.get("queued_tasks", [])
            if ex["id"] == task_id or any(t["id"] == task_id for t in tasks):
                return ex["directory"]
    return None


def _ps() -> str:
    return subprocess.run(["ps", "-eww", "-o", "pid,args"], capture_output=True, text=True).stdout


def _container_of(docker_client, task_id: str, statuses: list[dict]):
    """The task's container: localmesos names it after the task, real Mesos after its
    container id (in the task's statuses)."""
    ids = {
        st["container_status"]["container_id"]["value"]
        for st in statuses
        if st.get("container_status", {}).get("container_id")
    }
    wanted = {f"/mesos-{i}" for i in ids}
    return find_container(
        docker_client,
        lambda c: any(task_id in name or name in wanted for name in c.get("Names") or ()),
    )


async def views(cluster, task: dict, docker_client, *, plant: bool = True) -> dict[str, str]:
    """Every view of ``task`` a stranger might read, as text, by name. Plants FILE_MARK in its
    sandbox first (the sandbox's positive control)."""
    out: dict[str, str] = {}
    state = await cluster.state()
    agent_host = next(a["hostname"] for a in state["slaves"] if a["id"] == task["slave_id"])
    out["master /state"] = json.dumps(state)
    if cluster.kind == "real":
        master = cluster.master_url
        agent = _agent_url(cluster, agent_host)
        agent_state = await _get(f"{agent}/state")
        out["agent /state"] = agent_state
        for call in ("GET_STATE", "GET_EXECUTORS", "GET_TASKS"):
            out[f"agent {call}"] = await _operator(agent, call)
            out[f"master {call}"] = await _operator(master, call)
        directory = _executor_directory(json.loads(agent_state), task["id"])
    else:
        directory = cluster.sandbox(agent_host, task["slave_id"], task["framework_id"], task["id"])
        directory = directory if os.path.isdir(directory) else None
    if directory is not None:
        if plant:
            marker = Path(directory) / "planted-by-test.txt"
            marker.write_text(FILE_MARK)
        files = (
            await _sandbox_files_real(agent, directory)
            if cluster.kind == "real"
            else _sandbox_files_disk(directory)
        )
        out["sandbox files"] = json.dumps(files)
        out["sandbox file names"] = " ".join(files)
    out["ps -eww"] = _ps()
    container = await asyncio.to_thread(
        _container_of, docker_client, task["id"], task.get("statuses", [])
    )
    if container is not None:
        out["docker inspect"] = json.dumps(container.attrs)
    return out


def check(views_: dict[str, str], token: str | None, *, running: bool, server: str) -> None:
    """The token (or, where no process ever got one, the token's variable name) is in no view,
    and each view's positive control finds its marker."""
    for name, text in views_.items():
        if token is not None:
            assert token not in text, f"the API token is in {name}"
        for var in TOKEN_NAMES:
            # As JSON ({"name": "JUPYTERHUB_API_TOKEN", ...}) or NAME=VALUE (argv, env files).
            assert f'"{var}"' not in text and f"{var}=" not in text, f"{var} is in {name}"
        if name == "master GET_EXECUTORS":
            assert json.loads(text)["type"] == "GET_EXECUTORS"  # no custom executors
        elif name == "sandbox files":
            assert FILE_MARK in text, "the sandbox's planted file was not read"
        elif name == "sandbox file names":
            assert ENV_FILE_NAME not in text, "the env file is still in the sandbox"
        elif name == "ps -eww":
            if running:
                assert ARG_MARK in text, "the notebook's command line is not on ps"
        elif name in SHOWS_ENV:
            assert ENV_MARK in text, f"{name} does not show the task's plain variable"
        else:
            assert server in text, f"{name} does not show the task"


def notebook_token(user: str, server: str) -> str | None:
    """The API token in the environment of the person's notebook process (as root reads it)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        env = dict(v.decode(errors="replace").split("=", 1) for v in raw if b"=" in v)
        if (
            env.get("JUPYTERHUB_USER") == user
            and env.get("JUPYTERHUB_SERVER_NAME") == server
            and env.get("JUPYTERHUB_API_TOKEN")
        ):
            return env["JUPYTERHUB_API_TOKEN"]
    return None


async def _task_of(cluster, user: str, server: str) -> dict | None:
    for task in (await cluster.tasks()).values():
        labels = {lab["key"]: lab["value"] for lab in task.get("labels", [])}
        if labels.get("jupyterhub.server") == server and user in task["name"]:
            return task
    return None


async def _planted_process() -> Callable[[], Awaitable[None]]:
    """A process with a marker on its command line: ps's control once the notebook is gone."""
    proc = await asyncio.create_subprocess_exec(
        "/usr/bin/python3", "-c", "import time; time.sleep(600)", ARG_MARK
    )

    async def stop() -> None:
        proc.kill()
        await proc.wait()

    return stop


# ---------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("kind", KINDS)
async def test_the_token_is_in_no_view_of_the_task_while_it_runs_and_after(
    kind, cluster, hub, user, docker_client
):
    server = "mk" + secrets.token_hex(4)
    if kind == "mesos-image" and cluster.kind == "real":
        await _image_task_on_real_mesos(cluster, hub, user.name, server, docker_client)
        return
    code = await hub.start_server(user.name, server, {"profile": kind})
    assert code in (201, 202), code
    await hub.wait_server_ready(user.name, server, timeout=600)
    token = notebook_token(user.name, server)
    assert token, "the notebook has no API token: the env file did not reach it"
    # The notebook works with it: the hub's proxy and OAuth accept the notebook.
    code, status = await hub.get_through_proxy(user.name, server, path="api/status")
    assert code == 200, status
    task = await _task_of(cluster, user.name, server)
    assert task is not None and task["state"] == "TASK_RUNNING"
    expected = {"plain": None, "docker": "DOCKER", "mesos-image": "MESOS"}[kind]
    assert (task.get("container") or {}).get("type") == expected, task.get("container")

    running = await views(cluster, task, docker_client)
    check(running, token, running=True, server=server)
    assert token not in hub.log_text()

    await hub.stop_server(user.name, server)
    task = await wait_for(
        lambda: _stopped(cluster, task["id"]), 60, f"task {task['id']} to end after the stop"
    )
    stop_planted = await _planted_process()
    try:
        after = await views(cluster, task, docker_client, plant=False)
        check(after, token, running=True, server=server)
    finally:
        await stop_planted()


async def _stopped(cluster, task_id: str) -> dict | None:
    task = (await cluster.tasks()).get(task_id)
    return task if task and task["state"] in ("TASK_KILLED", "TASK_FINISHED") else None


async def _image_task_on_real_mesos(cluster, hub, user: str, server: str, docker_client) -> None:
    """The Mesos containerizer with an image on a real agent: what Mesos shows while the image
    is pulled and provisioned, and once the container has failed (this kernel), by name; an env
    file left behind holds a revoked token."""
    code = await hub.start_server(user, server, {"profile": "mesos-image"})
    if code not in (201, 202):
        raise hub.fail(f"starting the image server answered {code}")
    task = await wait_for(lambda: _task_of(cluster, user, server), 120, "the image task")
    assert task["container"]["type"] == "MESOS"
    seen_states = set()
    while True:
        task = (await cluster.tasks())[task["id"]]
        seen_states.add(task["state"])
        looked = await views(cluster, task, docker_client, plant=False)
        # While staging, the agent shows the TaskInfo (queued_tasks, executors): no token.
        for name, text in looked.items():
            for var in TOKEN_NAMES:
                assert f'"{var}"' not in text, f"{var} is in {name} ({task['state']})"
                if name not in ("sandbox files", "sandbox file names"):  # the env file: below
                    assert f"{var}=" not in text, f"{var} is in {name} ({task['state']})"
        if task["state"] not in ("TASK_STAGING", "TASK_STARTING"):
            break
        await asyncio.sleep(2)
    assert ENV_MARK in looked["agent GET_STATE"]  # the control: plain variables are shown
    final = await views(cluster, task, docker_client)
    # A file the fetcher left (the container failed before its start script ran) holds a
    # token JupyterHub revoked when the spawn failed.
    await wait_for(lambda: _server_gone(hub, user, server), 120, "the failed spawn to end")
    files = json.loads(final["sandbox files"])
    left = {p: t for p, t in files.items() if p.endswith("/" + ENV_FILE_NAME)}
    for text in left.values():
        token = dict(line.split("=", 1) for line in text.splitlines())["JUPYTERHUB_API_TOKEN"]
        code, _ = await hub.api("GET", "/user", token=token)
        assert code == 403, "a token left in a failed task's sandbox still works"
    files = {p: t for p, t in files.items() if p not in left}
    final["sandbox files"] = json.dumps(files)
    final["sandbox file names"] = " ".join(files)
    check(final, None, running=False, server=server)
    last = task["statuses"][-1]
    print(f"\nreal Mesos, image task: {sorted(seen_states)}; {last.get('message', '')[-200:]}")
    print(f"env file left in its sandbox (token revoked): {bool(left)}")


async def _server_gone(hub, user: str, server: str) -> bool:
    servers = (await hub.user_model(user)).get("servers") or {}
    return server not in servers
