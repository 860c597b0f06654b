"""DockerRunner against the real engine and the debootstrap base image (Mesos Docker semantics)."""

from __future__ import annotations

import asyncio
import os
import urllib.request
import uuid

import pytest

from mesosspawner.localmesos.docker_runner import DockerRunner, container_name
from mesosspawner.localmesos.runner import AgentTaskSpec, RunnerError
from mesosspawner.testing.net import free_port
from tests.services.docker import container_names

pytestmark = pytest.mark.timeout(300)


def make_spec(tmp_path, image, command, *, docker=None, volumes=None, ports=(), grace=3.0):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir(exist_ok=True)
    container = {"type": "DOCKER", "docker": {"image": image, **(docker or {})}}
    if volumes:
        container["volumes"] = volumes
    return AgentTaskSpec(
        task_id=f"t-{uuid.uuid4().hex[:8]}",
        framework_id="fw-test",
        agent_id="S-test",
        name="test",
        sandbox=str(sandbox),
        command=command,
        container=container,
        env={"MESOS_TASK_ID": "x"},
        ports=list(ports),
        kill_grace=grace,
    )


async def run(spec, reports=None):
    runner = DockerRunner()
    await runner.start(
        spec, lambda state, msg: (reports if reports is not None else []).append(msg)
    )
    return runner


def sandbox_file(spec, name) -> str:
    with open(os.path.join(spec.sandbox, name)) as fh:
        return fh.read()


async def test_runs_as_the_user_parameter_and_writes_volumes_as_that_uid(
    tmp_path, base_image, docker_client
):
    data = tmp_path / "home"
    data.mkdir()
    os.chmod(data, 0o777)
    spec = make_spec(
        tmp_path,
        base_image,
        {
            "shell": True,
            "value": 'id -u; id -g; echo "$GREETING"; echo oops >&2; touch /home/alice/made-here',
            "environment": {"variables": [{"name": "GREETING", "value": "hello from env"}]},
        },
        docker={"parameters": [{"key": "user", "value": "4321:4322"}]},
        volumes=[{"container_path": "/home/alice", "host_path": str(data), "mode": "RW"}],
    )
    runner = await run(spec)
    code, message = await runner.wait()
    assert code == 0, message
    assert sandbox_file(spec, "stdout").split("\n")[:3] == ["4321", "4322", "hello from env"]
    assert "oops" in sandbox_file(spec, "stderr")
    made = (data / "made-here").stat()
    assert (made.st_uid, made.st_gid) == (4321, 4322)
    # the container is gone once the task ended
    names = container_names(docker_client)
    assert container_name(spec.agent_id, spec.task_id) not in names


async def test_exit_code_is_the_containers(tmp_path, base_image):
    runner = await run(make_spec(tmp_path, base_image, {"shell": True, "value": "exit 3"}))
    code, message = await runner.wait()
    assert code == 3 and "status 3" in message


async def test_non_shell_command_is_appended_to_the_entrypoint(tmp_path, base_image):
    # The debootstrap image has no entrypoint: value and arguments are the whole command.
    spec = make_spec(
        tmp_path, base_image, {"shell": False, "value": "echo", "arguments": ["a b", "c"]}
    )
    runner = await run(spec)
    assert (await runner.wait())[0] == 0
    assert sandbox_file(spec, "stdout") == "a b c\n"


async def test_kill_lets_the_task_handle_sigterm_within_the_grace_period(tmp_path, base_image):
    script = "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.2; done"
    spec = make_spec(tmp_path, base_image, {"shell": True, "value": script}, grace=30)
    runner = await run(spec)
    await _wait_for_output(spec, "ready")
    await runner.kill(spec.kill_grace)
    code, _ = await runner.wait()
    assert code == 0  # handled SIGTERM itself: not forced
    assert "got-term" in sandbox_file(spec, "stdout")


async def test_kill_forces_a_task_that_ignores_sigterm_after_the_grace(tmp_path, base_image):
    script = "trap '' TERM; echo ready; while true; do sleep 0.2; done"
    spec = make_spec(tmp_path, base_image, {"shell": True, "value": script}, grace=1)
    runner = await run(spec)
    await _wait_for_output(spec, "ready")
    await runner.kill(spec.kill_grace)
    code, message = await runner.wait()
    assert code is None and "137" in message  # SIGKILL after the grace period


async def test_missing_image_is_pulled_from_the_registry_and_reported(
    tmp_path, base_image, registry, docker_client
):
    ref = f"{registry}/mesosspawner-test/pulled:{uuid.uuid4().hex[:8]}"
    image = docker_client.images.get(base_image)
    image.tag(ref)
    for line in docker_client.api.push(ref, stream=True, decode=True):
        assert "error" not in line, line
    docker_client.images.remove(ref)  # only the tag: the layers stay, the reference is gone
    reports: list[str] = []
    runner = await run(make_spec(tmp_path, ref, {"shell": True, "value": "true"}), reports)
    assert (await runner.wait())[0] == 0
    assert reports == [f"pulling image {ref}"]
    docker_client.images.remove(ref)


async def test_unknown_image_fails_with_the_pull_error(tmp_path, base_image, registry):
    ref = f"{registry}/mesosspawner-test/absent:nope"
    with pytest.raises(RunnerError, match="Failed to pull image"):
        await run(make_spec(tmp_path, ref, {"shell": True, "value": "true"}))


async def test_bridge_port_mapping_reaches_the_container(tmp_path, notebook_image):
    host_port = free_port()
    spec = make_spec(
        tmp_path,
        notebook_image,
        {"shell": False, "value": "python3", "arguments": ["-m", "http.server", "8888"]},
        docker={
            "network": "BRIDGE",
            "port_mappings": [{"host_port": host_port, "container_port": 8888}],
        },
        ports=[host_port],
    )
    runner = await run(spec)
    try:
        body = await _http_get(f"http://127.0.0.1:{host_port}/", timeout=60)
        assert "Directory listing" in body
    finally:
        await runner.kill(1)
        await runner.wait()


async def _wait_for_output(spec, text, timeout=60.0):
    path = os.path.join(spec.sandbox, "stdout")
    async with asyncio.timeout(timeout):
        while not (os.path.exists(path) and text in sandbox_file(spec, "stdout")):
            await asyncio.sleep(0.2)


async def _http_get(url, timeout):
    def get():
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.read().decode()

    async with asyncio.timeout(timeout):
        while True:
            try:
                return await asyncio.to_thread(get)
            except OSError:
                await asyncio.sleep(0.5)


async def test_a_killed_task_leaves_no_container_when_the_agent_stops(
    tmp_path, base_image, docker_client
):
    spec = make_spec(tmp_path, base_image, {"shell": True, "value": "sleep 600"}, grace=0)
    runner = await run(spec)
    waiter = asyncio.create_task(runner.wait())
    await asyncio.sleep(0.2)
    await runner.kill(0)
    waiter.cancel()  # the agent stopping cancels its task jobs after killing them
    name = container_name(spec.agent_id, spec.task_id)
    async with asyncio.timeout(60):
        while name in container_names(docker_client):
            await asyncio.sleep(0.3)
