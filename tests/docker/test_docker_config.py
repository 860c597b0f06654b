"""What DockerRunner asks the engine for, checked without an engine (Mesos Docker semantics)."""

from __future__ import annotations

import pytest

from mesosspawner.localmesos.docker_runner import SANDBOX_MOUNT, container_config, container_name
from mesosspawner.localmesos.runner import AgentTaskSpec, RunnerError


def spec(command=None, docker=None, volumes=None, ports=(31000, 31001), **kw) -> AgentTaskSpec:
    container = {"type": "DOCKER", "docker": {"image": "lab/nb:1", **(docker or {})}}
    if volumes is not None:
        container["volumes"] = volumes
    return AgentTaskSpec(
        task_id="alice-1",
        framework_id="fw",
        agent_id="agent-S0",
        name="nb",
        sandbox="/tmp/sandbox",
        command=command or {"value": "echo hi", "shell": True},
        container=container,
        env={"MESOS_TASK_ID": "alice-1", "PATH": "/agent/only", "HOME": "/root"},
        ports=list(ports),
        **kw,
    )


def test_shell_command_replaces_the_entrypoint():
    cfg = container_config(spec())
    assert cfg["entrypoint"] == ["/bin/sh"] and cfg["command"] == ["-c", "echo hi"]


def test_non_shell_command_is_appended_to_the_image_entrypoint():
    cfg = container_config(
        spec({"shell": False, "value": "jupyterhub-singleuser", "arguments": ["--port=8888"]})
    )
    assert "entrypoint" not in cfg
    assert cfg["command"] == ["jupyterhub-singleuser", "--port=8888"]


def test_environment_is_the_commands_not_the_agents():
    cfg = container_config(
        spec({"value": "x", "environment": {"variables": [{"name": "FOO", "value": "1"}]}})
    )
    env = cfg["environment"]
    assert env["FOO"] == "1" and env["MESOS_TASK_ID"] == "alice-1"
    assert env["MESOS_SANDBOX"] == SANDBOX_MOUNT
    assert "PATH" not in env and "HOME" not in env


def test_user_label_and_env_parameters():
    params = [
        {"key": "user", "value": "1001:100"},
        {"key": "label", "value": "hub=lab"},
        {"key": "env", "value": "BAR=2"},
    ]
    cfg = container_config(spec(docker={"parameters": params}))
    assert cfg["user"] == "1001:100"
    assert cfg["labels"]["hub"] == "lab"
    assert cfg["labels"]["org.mesosspawner.localmesos.task_id"] == "alice-1"
    assert cfg["environment"]["BAR"] == "2"


def test_security_parameters_repeat_as_in_docker_run():
    params = [
        {"key": "security-opt", "value": "no-new-privileges"},
        {"key": "cap-drop", "value": "ALL"},
        {"key": "cap-add", "value": "NET_BIND_SERVICE"},
        {"key": "cap-drop", "value": "MKNOD"},
    ]
    cfg = container_config(spec(docker={"parameters": params}))
    assert cfg["security_opt"] == ["no-new-privileges"]
    assert cfg["cap_drop"] == ["ALL", "MKNOD"] and cfg["cap_add"] == ["NET_BIND_SERVICE"]


def test_unsupported_parameter_is_refused_by_name():
    with pytest.raises(RunnerError, match="'privileged-mode'"):
        container_config(spec(docker={"parameters": [{"key": "privileged-mode", "value": "1"}]}))


def test_bridge_port_mappings_must_use_the_tasks_ports():
    mapping = {"host_port": 31001, "container_port": 8888}
    cfg = container_config(spec(docker={"network": "BRIDGE", "port_mappings": [mapping]}))
    assert cfg["network_mode"] == "bridge"
    assert cfg["ports"] == {"8888/tcp": ("127.0.0.1", 31001)}
    outside = {"host_port": 32000, "container_port": 8888}
    with pytest.raises(RunnerError, match="host_port 32000 is not among .*31000, 31001"):
        container_config(spec(docker={"network": "BRIDGE", "port_mappings": [outside]}))


def test_host_network_refuses_port_mappings():
    assert container_config(spec())["network_mode"] == "host"
    mapping = {"host_port": 31000, "container_port": 8888}
    with pytest.raises(RunnerError, match="only supported with network BRIDGE"):
        container_config(spec(docker={"network": "HOST", "port_mappings": [mapping]}))
    with pytest.raises(RunnerError, match="'USER' is not supported"):
        container_config(spec(docker={"network": "USER"}))


def test_volumes_legacy_form_and_sandbox_mount():
    vols = [
        {"container_path": "/home/alice", "host_path": "/srv/home/alice", "mode": "RW"},
        {"container_path": "/data", "host_path": "/srv/data", "mode": "RO"},
        {"container_path": "scratch", "host_path": "scratch", "mode": "RW"},
    ]
    cfg = container_config(spec(volumes=vols))
    assert cfg["volumes"]["/srv/home/alice"] == {"bind": "/home/alice", "mode": "rw"}
    assert cfg["volumes"]["/srv/data"] == {"bind": "/data", "mode": "ro"}
    assert cfg["volumes"]["/tmp/sandbox/scratch"] == {
        "bind": f"{SANDBOX_MOUNT}/scratch",
        "mode": "rw",
    }
    assert cfg["volumes"]["/tmp/sandbox"] == {"bind": SANDBOX_MOUNT, "mode": "rw"}
    with pytest.raises(RunnerError, match="mode 'RX'"):
        container_config(spec(volumes=[{"container_path": "/a", "host_path": "/b", "mode": "RX"}]))


def test_mesos_containerizer_image_runs_as_command_user_with_full_argv():
    task = spec({"shell": False, "value": "/usr/bin/env", "arguments": ["env", "-i"]}, user="alice")
    task.container = {
        "type": "MESOS",
        "mesos": {"image": {"type": "DOCKER", "docker": {"name": "x:1"}}},
    }
    cfg = container_config(task)
    assert cfg["image"] == "x:1" and cfg["user"] == "alice" and cfg["network_mode"] == "host"
    assert cfg["entrypoint"] == ["/usr/bin/env"] and cfg["command"] == ["-i"]


def test_container_names_are_valid_and_distinct():
    a = container_name("S0", "alice@lab/1")
    b = container_name("S0", "alice@lab_1")
    assert a.startswith("mesos-S0.alice_lab_1") and a != b
    assert container_name("S0", "bob-1") == "mesos-S0.bob-1"


async def test_no_engine_is_a_clear_launch_failure(tmp_path):
    import docker

    from mesosspawner.localmesos.docker_runner import DockerRunner

    def client():
        return docker.DockerClient(base_url=f"unix://{tmp_path}/no.sock", version="auto")

    task = spec()
    task.sandbox = str(tmp_path)
    with pytest.raises(RunnerError, match="Cannot run Docker image 'lab/nb:1': no Docker engine"):
        await DockerRunner(client_factory=client).start(task, lambda state, msg: None)
