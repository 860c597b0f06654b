"""What an agent's Mesos containerizer does depends on its flags (issue 19 item 11), on both
masters: a default agent refuses host-path volumes on command tasks and tasks with a Docker
image; an agent with ``--isolation=filesystem/linux`` (localmesos: ``isolation =
"filesystem/linux"`` in the cluster file) mounts the volumes, privately, as asked.

Real agents get the linux launcher, which ``filesystem/linux`` requires (root, cgroups v1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mesosspawner.localmesos.config import ClusterConfigError, default_cluster, from_dict
from mesosspawner.localmesos.testing import RawScheduler, command_task, framework_info
from mesosspawner.testing.real_mesos import cgroups_root
from tests.services.cluster import AgentSpec, port_block, release_port_block

pytestmark = pytest.mark.timeout(180)

# Cluster-file entries for the checks of the opt-ins themselves (no cluster runs).
PLAIN = {"hostname": "plain-1", "resources": "cpus:2;mem:1024;ports:[46200-46209]"}
FS_LINUX = {"hostname": "fslinux-1", "resources": "cpus:2;mem:1024;ports:[46210-46219]"}


@pytest.fixture
def master_url(mesos_kind, clusters):
    """A master with a default agent (plain-1) and one with filesystem/linux (fslinux-1)."""
    if mesos_kind == "real" and os.geteuid() != 0:
        pytest.skip("the linux launcher (for filesystem/linux) needs root")
    base = port_block()
    agents = (
        AgentSpec("plain-1", f"cpus:2;mem:1024;ports:[{base}-{base + 9}]"),
        AgentSpec(
            "fslinux-1",
            f"cpus:2;mem:1024;ports:[{base + 10}-{base + 19}]",
            local_keys=(("isolation", "filesystem/linux"),),
            real_flags=("--launcher=linux", "--isolation=filesystem/linux,posix/cpu,posix/mem"),
        ),
    )
    try:
        yield clusters(mesos_kind, agents).master_url
    finally:
        release_port_block(base)


async def offers_by_host(s: RawScheduler, hosts: set[str]) -> dict[str, dict]:
    found: dict[str, dict] = {}
    while not hosts <= set(found):
        for offer in await s.offers(timeout=15):
            found[offer["hostname"]] = offer
    return found


async def outcomes(s: RawScheduler, *task_ids: str) -> list[dict]:
    """Each task's first terminal status, read from one stream (every agent update is
    acknowledged on the way)."""
    done: dict[str, dict] = {}
    while not set(task_ids) <= set(done):
        status = await s.update(timeout=60)
        if "uuid" in status:
            await s.ack(status)
        if status["state"] not in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"):
            done.setdefault(status["task_id"]["value"], status)
    return [done[t] for t in task_ids]


def volume_task(offer: dict, task_id: str, command: str, volumes: list[dict]) -> dict:
    task = command_task(offer, task_id, command, cpus=0.1, mem=32)
    task["container"] = {"type": "MESOS", "volumes": volumes}
    return task


async def test_host_path_volumes_on_command_tasks_need_filesystem_linux(master_url, tmp_path):
    shared = Path(tempfile.mkdtemp(prefix="volume-host-"))
    target = Path(tempfile.mkdtemp(prefix="volume-target-"))  # an absolute container path
    try:
        (shared / "hello.txt").write_text("from the host\n")
        os.chmod(shared, 0o777)
        s = RawScheduler(master_url)
        await s.subscribe(framework_info(user="root", name="volumes"))
        offers = await offers_by_host(s, {"plain-1", "fslinux-1"})
        relative = {"container_path": "data", "host_path": str(shared), "mode": "RW"}
        absolute = {"container_path": str(target), "host_path": str(shared), "mode": "RW"}
        read_only = {"container_path": "ro", "host_path": str(shared), "mode": "RO"}
        write = "cat {p}/hello.txt && echo written > {p}/out-{t}.txt"
        plain, fs = offers["plain-1"], offers["fslinux-1"]
        await s.accept(
            [plain["id"]["value"]],
            [volume_task(plain, "t-plain", write.format(p="data", t="plain"), [relative])],
        )
        await s.accept(
            [fs["id"]["value"]],
            [
                volume_task(fs, "t-rel", write.format(p="data", t="rel"), [relative]),
                volume_task(fs, "t-abs", write.format(p=target, t="abs"), [absolute]),
                volume_task(fs, "t-ro", write.format(p="ro", t="ro"), [read_only]),
            ],
        )
        refused, rel, ab, ro = await outcomes(s, "t-plain", "t-rel", "t-abs", "t-ro")

        assert refused["state"] == "TASK_FAILED"
        assert refused["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
        assert "Volumes in ContainerInfo is not supported" in refused["message"]
        assert rel["state"] == ab["state"] == "TASK_FINISHED", (rel, ab)
        assert ro["state"] == "TASK_FAILED", ro  # read-only: the write fails, the command too
        assert sorted(p.name for p in shared.iterdir()) == [
            "hello.txt",
            "out-abs.txt",
            "out-rel.txt",
        ]
        # The absolute path was mounted in the task's own mount namespace, not on the host.
        assert list(target.iterdir()) == []
        await s.close()
    finally:
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)


async def test_a_docker_image_in_the_mesos_containerizer_needs_image_providers(master_url):
    s = RawScheduler(master_url)
    await s.subscribe(framework_info(user="root", name="images"))
    offer = (await offers_by_host(s, {"plain-1"}))["plain-1"]
    task = command_task(offer, "t-image", "true", cpus=0.1, mem=32)
    task["container"] = {
        "type": "MESOS",
        "mesos": {"image": {"type": "DOCKER", "docker": {"name": "no-registry.invalid/x:1"}}},
    }
    await s.accept([offer["id"]["value"]], [task])
    (status,) = await outcomes(s, "t-image")
    assert status["state"] == "TASK_FAILED"
    assert status["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert "Unsupported container image type: DOCKER" in status["message"]
    await s.close()


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"image_providers": "docker"}, "'filesystem/linux'"),
        ({"image_providers": "docker", "isolation": "filesystem/linux"}, "'docker/runtime'"),
        ({"image_providers": "appc", "isolation": "filesystem/linux"}, "Docker images only"),
        ({"isolation": "filesystem/linx"}, "'filesystem/linx' is not a Mesos isolator"),
        ({"isolation": 3}, "comma-separated string or a list"),
        ({"docker_config": "config.json"}, "must be an absolute path to a Docker config.json"),
    ],
)
def test_the_cluster_file_opt_ins_are_checked_as_mesos_agent_checks_its_flags(keys, expected):
    with pytest.raises(ClusterConfigError, match=expected) as info:
        from_dict({"agent": [dict(PLAIN, **keys)]}, "lab.toml")
    assert "lab.toml" in str(info.value) and "plain-1" in str(info.value)


def test_docker_config_gives_the_docker_runner_the_login_of_the_images_registry(tmp_path):
    from mesosspawner.images.registry import Credentials, docker_config_json
    from mesosspawner.localmesos.docker_runner import DockerRunner

    path = tmp_path / "config.json"
    path.write_text(docker_config_json({"127.0.0.1:5000": Credentials("agents", "pw")}))
    (agent,) = from_dict({"agent": [dict(PLAIN, docker_config=str(path))]}, "lab.toml").agents
    assert agent.containerization.docker_config == str(path)
    runner = DockerRunner(docker_config=agent.containerization.docker_config)
    assert runner._auth_config("127.0.0.1:5000/lab/nb@sha256:" + "0" * 64) == {
        "username": "agents",
        "password": "pw",
    }
    assert runner._auth_config("127.0.0.1:6000/lab/nb:1") is None  # another registry
    assert runner._auth_config("debian:bookworm") is None
    assert DockerRunner()._auth_config("127.0.0.1:5000/lab/nb:1") is None


def test_only_the_default_clusters_gpu_agent_runs_images():
    both = from_dict(
        {
            "agent": [
                dict(PLAIN, isolation="filesystem/linux,docker/runtime", image_providers="docker"),
                dict(
                    FS_LINUX,
                    isolation=["filesystem/linux", "docker/runtime"],
                    image_providers=["docker"],
                ),
            ]
        },
        "lab.toml",
    )
    assert both.agents[0].containerization == both.agents[1].containerization
    assert both.agents[0].containerization.images
    by_host = {a.hostname: a.containerization for a in default_cluster().agents}
    assert by_host["gpu-1"].images and by_host["gpu-1"].host_volumes
    assert not any(c.images or c.host_volumes for h, c in by_host.items() if h != "gpu-1")


def test_a_separate_agent_takes_the_same_flags_and_rules():
    argv = [sys.executable, "-m", "mesosspawner.localmesos", "agent"]
    argv += ["--master", "http://127.0.0.1:9", "--hostname", "gpu-9", "--resources", "gpus:1"]
    proc = subprocess.run(
        [*argv, "--image-providers", "docker", "--isolation", "filesystem/linux"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "'gpu-9'" in proc.stderr and "'docker/runtime'" in proc.stderr


def linux_launcher_agent(hostname: str, base: int, *flags: str) -> AgentSpec:
    return AgentSpec(
        hostname,
        f"cpus:1;mem:512;ports:[{base}-{base + 4}]",
        real_flags=("--launcher=linux", "--isolation=posix/cpu,posix/mem", *flags),
    )


async def run_sleeper(master_url: str, hostname: str, task_id: str) -> RawScheduler:
    """Subscribe to ``master_url`` and run a long task on ``hostname``, up to TASK_RUNNING."""
    s = RawScheduler(master_url)
    await s.subscribe(framework_info(user="root", name=task_id))
    offer = (await offers_by_host(s, {hostname}))[hostname]
    await s.accept([offer["id"]["value"]], [command_task(offer, task_id, "sleep 600")])
    while (status := await s.update(task_id, timeout=60))["state"] != "TASK_RUNNING":
        await s.ack(status)
        assert status["state"] in ("TASK_STAGING", "TASK_STARTING"), status
    await s.ack(status)
    return s


async def test_real_agents_with_the_linux_launcher_side_by_side_keep_each_others_tasks(
    real_mesos_home, clusters
):
    """The test agents share this machine's cgroups (production has one agent per machine), and
    an agent with the linux launcher that starts destroys every container under its
    ``--cgroups_root`` it has not checkpointed, as an orphan. Each test agent has a root of its
    own, so another test's agent starting leaves a running task alone. Control: an agent given
    the first agent's root kills it, within the same wait."""
    if os.geteuid() != 0:
        pytest.skip("the linux launcher needs root")
    base = port_block()
    try:
        first = clusters("real", (linux_launcher_agent("side-a", base),))
        s = await run_sleeper(first.master_url, "side-a", "t-long")
        second = clusters("real", (linux_launcher_agent("side-b", base + 5),))
        other = await run_sleeper(second.master_url, "side-b", "t-other")  # its recovery is over
        with pytest.raises(TimeoutError):
            killed = await s.update("t-long", timeout=5)
            pytest.fail(f"another agent's start ended the task: {killed}")

        same_root = f"--cgroups_root={cgroups_root(first.agent('side-a').work_dir)}"
        clusters("real", (linux_launcher_agent("side-c", base + 10, same_root),))
        killed = await s.update("t-long", timeout=5)
        assert killed["state"] == "TASK_FAILED", killed
        await other.close()
        await s.close()
    finally:
        release_port_block(base)
