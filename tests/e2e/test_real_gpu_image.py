"""The GPU profile with its image on a REAL Mesos 1.11.0 agent configured for images (issue 19
item 11): ``--image_providers=docker --isolation=filesystem/linux,docker/runtime`` (and the
linux launcher filesystem/linux requires), ``gpus:1`` in its resources (a real agent accounts
GPUs without the nvidia isolator), the lab's notebook image pulled from the loopback registry
by the agent's own Docker image provider.

A default agent refuses such a task ("Unsupported container image type: DOCKER",
tests/localmesos/test_agent_containerization.py); this one pulls and provisions the image. On a
kernel without ``/proc/sysrq-trigger`` (CONFIG_MAGIC_SYSRQ unset, as on the Firecracker VMs this
project's CI runs on) Mesos cannot start any container with an image: its filesystem/linux
isolator bind-mounts that file into every image's root filesystem (``ROOTFS_CONTAINER_MOUNTS``
in src/slave/containerizer/mesos/isolators/filesystem/linux.cpp), and the container fails with
"Failed to prepare mounts: Failed to create mount target '.../proc/sysrq-trigger'". The test
checks everything up to that point and then skips, naming it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.services.cluster import AgentSpec, port_block, release_port_block
from tests.services.e2e import agent_of, mesos_config, proc_ids, spawner_state

SYSRQ = Path("/proc/sysrq-trigger")


@pytest.fixture
def gpu_image_agent(tmp_path):
    base = port_block()
    yield AgentSpec(
        "gpu-img",
        f"cpus:2;mem:3072;disk:10000;gpus:1;ports:[{base}-{base + 29}]",
        "rack:r3;gpu_model:a100",
        real_flags=(
            "--launcher=linux",
            "--isolation=filesystem/linux,docker/runtime,posix/cpu,posix/mem",
            "--image_providers=docker",
            f"--docker_store_dir={tmp_path / 'store'}",
            "--image_provisioner_backend=copy",
            # Pulling and copying the image counts against executor registration (default
            # 1 min); on a busy machine that is too short, so the agent would cut the launch
            # and the spawner relaunch it. An image agent in a lab sets this too.
            "--executor_registration_timeout=5mins",
        ),
    )
    release_port_block(base)


def sandbox_stderr(cluster, hostname: str) -> str:
    work = cluster.agent(hostname).work_dir / "work"
    return "\n".join(
        p.read_text(errors="replace")
        for p in work.glob("slaves/*/frameworks/*/executors/*/runs/*/stderr")
    )


async def test_gpu_profile_with_its_image_on_an_agent_configured_for_images(
    real_mesos_home, clusters, gpu_image_agent, hub_factory, homes, user, notebook_image
):
    if os.geteuid() != 0:
        pytest.skip("the linux launcher (for filesystem/linux) needs root")
    cluster = clusters("real", agents=(gpu_image_agent,))
    extra = f"""
c.MesosSpawner.image = {notebook_image!r}
c.MesosSpawner.cmd = ["jupyterhub-singleuser"]
c.MesosSpawner.environment = {{}}
c.MesosSpawner.notebook_dir = "/work"
c.MesosSpawner.volumes = [
    {{"host_path": {str(homes)!r} + "/{{username}}", "container_path": "/work", "mode": "RW"}}
]
"""
    hub = await hub_factory(mesos_config(cluster.url, homes, extra), start_timeout=300).launch()
    await hub.create_user(user.name)
    try:
        assert await hub.start_server(user.name, "", {"profile": "gpu"}) in (201, 202)
        # Up to the hub's start timeout: the first start pulls and provisions the image.
        await hub.wait_server_ready(user.name, "", timeout=300)
        state = await spawner_state(hub, user.name, "")
    except AssertionError:
        stderr = sandbox_stderr(cluster, "gpu-img")
        tasks = list((await cluster.tasks()).values())
        # The agent took the image task (no "Unsupported container image type") and pulled
        # and provisioned the image; only the container's mounts failed.
        assert tasks, "no task reached the agent"
        assert {t["container"]["type"] for t in tasks} == {"MESOS"}, tasks
        assert all(t["resources"]["gpus"] == 1 for t in tasks), tasks
        assert "Unsupported container image type" not in str([t["statuses"] for t in tasks])
        if "sysrq-trigger" in stderr and not SYSRQ.exists():
            pytest.skip(
                "real Mesos 1.11 cannot start a container with an image on this kernel: its"
                " filesystem/linux isolator bind-mounts /proc/sysrq-trigger into the image's"
                " root filesystem and this kernel has none (CONFIG_MAGIC_SYSRQ unset); the"
                f" image was pulled and provisioned, then: {stderr.strip().splitlines()[-1]}"
            )
        raise

    master = await cluster.state()
    task = (await cluster.tasks())[state["task_id"]]
    assert task["container"]["type"] == "MESOS"
    assert task["container"]["mesos"]["image"]["docker"]["name"] == notebook_image
    assert task["resources"]["gpus"] == 1
    assert agent_of(master, task)["hostname"] == "gpu-img"
    code, status = await hub.get_through_proxy(user.name, path="api/status")
    assert code == 200, status
    assert proc_ids(state["task_id"]) == (user.uid, user.gid)
