"""MesosFramework against a REAL Mesos 1.11.0 master and agent: a partition that heals, and
launches the agent itself gives up on. (A server stopped during a partition, as JupyterHub stops
it, is tests/e2e/test_spawner_faults.py's, on both masters.)"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mesosspawner import naming, placement, taskinfo
from mesosspawner.envdrop import EnvDrop
from mesosspawner.framework import LaunchFailed, LaunchRequest, MesosFramework
from tests.services.cluster import AgentSpec
from tests.services.fakes import framework_config, stop_frameworks
from tests.services.sleepers import sleeper

AGENT = AgentSpec("cpu-1", "cpus:2;mem:2048;ports:[31000-31009]")


@pytest.fixture
async def framework_on(real_mesos_home, tmp_path):
    """Factory: a framework subscribed to a master URL; stopped (tasks killed) at teardown."""
    made: list[MesosFramework] = []

    async def make(url: str) -> MesosFramework:
        config = framework_config(
            master=url,
            name=f"test-{tmp_path.name}",
            id_file=str(tmp_path / "fw.json"),
            refuse_seconds=1,
            orphan_grace_seconds=30,
            reconcile_retry_seconds=0.5,
        )
        fw = MesosFramework(config)
        await fw.ensure_started(timeout=20)
        made.append(fw)
        return fw

    yield make
    await stop_frameworks(made)


async def wait_state(fw: MesosFramework, task_id: str, states: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while fw.task(task_id).state not in states:
        if time.monotonic() > deadline:
            raise AssertionError(f"{task_id} still {fw.task(task_id).describe()}")
        await fw.wait_change(task_id, 1)
    return fw.task(task_id).state


async def active_tasks(cluster) -> list[str]:
    return [
        t["id"]
        for t in (await cluster.tasks()).values()
        if t["state"] in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING")
    ]


async def test_partition_that_heals_gives_the_task_back_to_its_server(clusters, framework_on):
    cluster = clusters("real", (AGENT,))
    fw = await framework_on(cluster.url)
    record = await asyncio.wait_for(fw.launch(sleeper("alice")), 30)
    await cluster.partition("cpu-1")
    try:
        await wait_state(fw, record.task_id, {"TASK_UNREACHABLE"}, 30)
    finally:
        await cluster.heal("cpu-1")
    assert await wait_state(fw, record.task_id, {"TASK_RUNNING"}, 60) == "TASK_RUNNING"
    assert fw.task(record.task_id).claimed
    assert await active_tasks(cluster) == [record.task_id]


class SlowFile(BaseHTTPRequestHandler):
    """Answers after a delay, like a registry serving a large image layer."""

    delay = 4.0

    def do_GET(self):  # noqa: N802 (http.server's name)
        time.sleep(self.delay)
        body = b"payload\n"
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except BrokenPipeError:
            pass  # the agent killed the fetcher first, as the test intends

    def log_message(self, *args):
        pass


@pytest.fixture
def slow_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowFile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/layer.tar"
    server.shutdown()


async def test_executor_registration_timeout_is_retried_once_then_names_the_agent_flag(
    clusters, framework_on, slow_server
):
    """A fetch slower than the agent's --executor_registration_timeout (what a cold image pull
    does on a real cluster): one retry, then a failure that tells the admin what to raise."""
    cluster = clusters("real", (AGENT,), agent_flags=("--executor_registration_timeout=1secs",))
    fw = await framework_on(cluster.url)
    req = sleeper("carol", uris=(slow_server,))
    with pytest.raises(LaunchFailed, match="--executor_registration_timeout") as failed:
        await asyncio.wait_for(fw.launch(req), 60)
    assert req.registration_retries == 1
    assert req.attempts == 2
    assert "executor_registration_timeout" in str(failed.value)
    assert await active_tasks(cluster) == []


async def test_docker_task_gets_its_token_without_any_command_line_showing_it(
    clusters, framework_on, docker_engine, pulled_notebook_image
):
    """Mesos's Docker executor runs `docker run -e NAME=VALUE` for the container's whole life;
    the token must reach the container through the fetched env file instead, which the image's
    start script reads and deletes before the command runs."""
    cluster = clusters("real", (AGENT,), docker=True)
    fw = await framework_on(cluster.url)
    drop = EnvDrop("127.0.0.1", 0, "127.0.0.1")
    drop.start()
    token = secrets.token_hex(20)
    env = {"JUPYTERHUB_API_TOKEN": token, "JUPYTERHUB_USER": "alice"}
    _, secret = taskinfo.secrets_in_env_file(env)
    _, url = drop.put(taskinfo.docker_env_file(secret), ttl=120)
    task_id = naming.task_id("jupyterhub", "alice", "", f"n{time.time_ns()}")
    script = 'echo "$JUPYTERHUB_API_TOKEN $JUPYTERHUB_USER" > "$MESOS_SANDBOX/seen"; exec sleep 120'
    spec = taskinfo.TaskSpec(
        task_id=task_id,
        name="jupyter alice",
        argv=("sh", "-c", script),
        env=env,
        image=pulled_notebook_image,
        user="nobody",  # the sandbox (and the fetched file) are nobody's: it deletes the file
        uid=65534,
        gid=65534,
        env_file_uris=(url,),
        kill_grace_seconds=1,
    )
    req = LaunchRequest(needs=placement.Request(key="alice", cpus=0.5, mem=64), spec=spec)
    try:
        record = await asyncio.wait_for(fw.launch(req), 120)
        assert record.state == "TASK_RUNNING"
        work = Path(cluster.agent_work_dir("cpu-1"))
        deadline = time.monotonic() + 30
        files = []
        while not files and time.monotonic() < deadline:
            files = [f for f in work.glob("**/runs/*/seen") if f.stat().st_size]
            await asyncio.sleep(0.5)
        assert files, "the container never wrote its environment"
        assert files[0].read_text().split() == [token, "alice"]
        assert not (files[0].parent / taskinfo.ENV_FILE_NAME).exists()
        command_lines = subprocess.run(
            ["ps", "-eww", "-o", "args"], capture_output=True, text=True, check=True
        ).stdout
        # The executor's `docker run` is there, with the plain variables on its command line.
        assert "JUPYTERHUB_USER=alice" in command_lines
        assert token not in command_lines
        assert len(drop) == 0  # fetched once, gone
    finally:
        drop.stop()
