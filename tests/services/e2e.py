"""Helpers of the end-to-end tests: MesosSpawner's hub config, a spawn as the REST API makes
it, readers of a notebook's process, waiting for a condition, and a page as a person sees it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path

import requests

from mesosspawner import naming
from mesosspawner.testing.hub import pids_with_env
from tests.services.cluster import tasks_by_id

__all__ = ["tasks_by_id"]


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


def secure_mesos_config(
    cluster, homes: Path, extra: str = "", *, secret_file: str | None = None
) -> str:
    """``mesos_config`` for a secure cluster (``secure=True``): the hub authenticates as the
    cluster's ``hub`` principal with its secret in a file (``secret_file``: another one), and
    FrameworkInfo.user is never root (Mesos authorizes tasks without command.user as it)."""
    security = cluster.security
    secret_file = secret_file or str(security.secret_file(security.hub))
    return mesos_config(
        cluster.url,
        homes,
        f"""
c.MesosSpawner.principal = {security.hub.principal!r}
c.MesosSpawner.secret_file = {secret_file!r}
c.MesosSpawner.framework_user = "nobody"
{extra}""",
    )


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


def agent_of(state: dict, task: dict) -> dict:
    return next(a for a in state["slaves"] if a["id"] == task["slave_id"])


async def spawner_state(hub, user: str, name: str = "") -> dict:
    code, model = await hub.api("GET", f"/users/{user}?include_stopped_servers")
    assert code == 200, model
    server = model["servers"][name]
    return server.get("state") or {}


MESOS_PROGRAMS = (b"mesos-executor", b"mesos-containerizer", b"mesos-docker-executor")


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
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            # Mesos's own processes carry the task's plain variables, never its secrets.
            if "JUPYTERHUB_API_URL" in _environ(pid) and not argv0.endswith(MESOS_PROGRAMS):
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


def labels_of(task: dict) -> dict[str, str]:
    """A task's labels as state.json lists them (``[{key, value}]``)."""
    return {lab["key"]: lab["value"] for lab in task.get("labels", [])}


def user_tasks(tasks: dict[str, dict], user: str) -> dict[str, dict]:
    """The tasks (``tasks_by_id``) of ``user``'s notebooks, by the label the spawner sets
    (``naming.safe_name``: a safe name as it is, others ``x--<escape>``)."""
    label = naming.safe_name(user)
    return {tid: t for tid, t in tasks.items() if labels_of(t).get("jupyterhub.user") == label}


async def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """Await ``predicate()`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def holds(check, seconds: float, what: str, interval: float = 0.5) -> None:
    """Assert that ``await check()`` stays true for ``seconds``: how a test shows that
    something does NOT happen (a server kept through a partition, a withdrawn request that
    never launches) for a stated time, instead of sleeping and looking once."""
    deadline = time.monotonic() + seconds
    while True:
        assert await check(), f"{what}: no longer true {deadline - time.monotonic():.1f}s early"
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(interval)


async def server_gone(hub, user: str, name: str = "") -> bool:
    servers = (await hub.user_model(user)).get("servers") or {}
    return name not in servers


def logged_in_get(base: str, user: str, path: str) -> tuple[int, str]:
    """GET a hub page as a person would: log in with the dummy authenticator, keep the cookie
    (blocking: call it through ``asyncio.to_thread``)."""
    with requests.Session() as session:
        session.get(f"{base}/hub/login")
        session.post(
            f"{base}/hub/login",
            data={"username": user, "password": "x", "_xsrf": session.cookies.get("_xsrf")},
        )
        response = session.get(base + path, allow_redirects=False)
        return response.status_code, response.text


async def spawn_page(hub, user: str) -> str:
    """The page where ``user`` would start their server again, as they see it."""
    code, text = await asyncio.to_thread(logged_in_get, hub.url, user, f"/hub/spawn/{user}")
    assert code == 200, text[-2000:]
    return text


class ProgressFollower:
    """A server's progress stream (the REST progress API, as the spawn-pending page reads it)
    followed in the background while the spawn waits: ``messages()`` grows as events come."""

    def __init__(self, hub, user: str, name: str = "") -> None:
        self.hub = hub
        self.user = user
        self.name = name
        self.events: list[dict] = []
        self._buffer = b""
        self._task: asyncio.Task | None = None

    def start(self) -> ProgressFollower:
        self._task = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        import json

        from tornado.httpclient import HTTPRequest

        def on_chunk(chunk: bytes) -> None:
            self._buffer += chunk
            while b"\n\n" in self._buffer:
                block, self._buffer = self._buffer.split(b"\n\n", 1)
                for line in block.splitlines():
                    if line.startswith(b"data:"):
                        self.events.append(json.loads(line[5:].strip()))

        path = self.hub._server_path(self.user, self.name) + "/progress"
        request = HTTPRequest(
            self.hub.url + "/hub/api" + path,
            headers={"Authorization": f"token {self.hub.admin_token}"},
            request_timeout=600,
            streaming_callback=on_chunk,
        )
        await self.hub._http.client().fetch(request, raise_error=False)

    def messages(self) -> list[str]:
        return [e.get("message", "") for e in self.events]

    async def wait_message(self, pattern: str, timeout: float) -> str:
        """The first message matching the regex ``pattern`` (waiting for it)."""
        regex = re.compile(pattern)

        async def found():
            return next((m for m in self.messages() if regex.search(m)), None)

        return await wait_for(found, timeout, f"{self.user}'s progress to say /{pattern}/")

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def add_to_group(hub, group: str, users: list[str]) -> None:
    """Put ``users`` in the JupyterHub group ``group`` (created if needed), through the API."""
    code, body = await hub.api("POST", f"/groups/{group}")
    assert code in (201, 409), body
    code, body = await hub.api("POST", f"/groups/{group}/users", json={"users": users})
    assert code == 200, body
