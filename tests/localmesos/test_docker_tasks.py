"""Docker tasks as the Docker containerizer runs them: limits, environment, slow pulls.

Real Mesos runs these through ``mesos-docker-executor`` and the Docker CLI; localmesos through
the Docker API. Both use the session's Docker engine (tests/services/docker.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import uuid

import docker.errors
import pytest

from mesosspawner.localmesos.testing import command_task, framework_info
from mesosspawner.testing.net import free_port


async def _offer_from(s, hostname: str) -> dict:
    while True:
        for offer in await s.offers():
            if offer["hostname"] == hostname:
                return offer


def _docker_task(offer: dict, task_id: str, image: str, **res: float) -> dict:
    task = command_task(offer, task_id, "sleep 60", **res)
    task["container"] = {"type": "DOCKER", "docker": {"image": image, "network": "HOST"}}
    return task


async def test_docker_task_gets_hard_limits_and_its_environment(
    make_backend, connect, docker_engine, docker_client, base_image
):
    backend = await make_backend(docker=True)
    s = connect(backend.url)
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    marker = uuid.uuid4().hex
    task = _docker_task(offer, "t-docker", base_image, cpus=0.2, mem=64)
    task["command"]["environment"] = {"variables": [{"name": "MARKER", "value": marker}]}
    await s.accept([offer["id"]["value"]], [task])
    states = []
    while not states or states[-1]["state"] != "TASK_RUNNING":
        status = await s.update("t-docker", timeout=60)
        await s.ack(status)
        states.append(status)
    assert [st["state"] for st in states] == ["TASK_STARTING", "TASK_RUNNING"]
    assert "message" not in states[0]  # no "pulling image" progress from a real agent

    def ours():
        return [
            c
            for c in docker_client.containers.list()
            if f"MARKER={marker}" in (c.attrs["Config"]["Env"] or [])
        ]

    (container,) = await asyncio.to_thread(ours)
    try:
        host = container.attrs["HostConfig"]
        assert host["Memory"] == 64 * 1024 * 1024  # docker run --memory: a hard limit
        assert host["CpuShares"] == 204  # --cpu-shares: 1024 per cpu
        env = container.attrs["Config"]["Env"]
        assert "MESOS_SANDBOX=/mnt/mesos/sandbox" in env
        kill = {"task_id": {"value": "t-docker"}, "agent_id": offer["agent_id"]}
        assert (await s.call({"type": "KILL", "kill": kill}))[0] == 202
        while (status := await s.update("t-docker", timeout=30))["state"] == "TASK_RUNNING":
            await s.ack(status)
        assert status["state"] == "TASK_KILLED"
    finally:
        with contextlib.suppress(docker.errors.NotFound):  # localmesos removes it itself
            await asyncio.to_thread(container.remove, force=True)


@pytest.fixture
def hanging_registry():
    """``127.0.0.1:PORT``: a registry that accepts connections and never answers."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    port = free_port()
    server.bind(("127.0.0.1", port))
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{port}"
    server.close()
    for conn in held:
        conn.close()


async def test_image_pull_counts_against_the_executor_registration_timeout(
    make_backend, connect, docker_engine, hanging_registry
):
    # The agent pulls before any executor runs: the task stays STAGING without an update,
    # and a pull that outlasts --executor_registration_timeout fails the launch.
    backend = await make_backend(docker=True, executor_registration_timeout=3)
    s = connect(backend.url)
    await s.subscribe(framework_info())
    offer = await _offer_from(s, "agent-1")
    task = _docker_task(offer, "t-pull", f"{hanging_registry}/never:1", cpus=0.1, mem=32)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await s.accept([offer["id"]["value"]], [task])
    status = await s.update("t-pull", timeout=30)
    assert loop.time() - start >= 2.5
    assert status["state"] == "TASK_FAILED"
    assert status["source"] == "SOURCE_AGENT"
    assert status["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert "discarded" in status["message"]
