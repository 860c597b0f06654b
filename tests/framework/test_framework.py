"""MesosFramework against an in-process localmesos: launches, withdrawal, idle suppression,
orphans and a broken request that must not hurt anyone else."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from mesosspawner import naming
from mesosspawner.framework import LaunchFailed, MesosFramework
from mesosspawner.localmesos.config import from_dict
from mesosspawner.localmesos.testing import running_cluster
from tests.services.fakes import framework_config
from tests.services.sleepers import sleeper

CLUSTER = {
    "agent": [
        {"hostname": "cpu-1", "resources": "cpus:2;mem:2048;ports:[31000-31009]"},
        {"hostname": "gpu-1", "resources": "cpus:2;mem:2048;gpus:1;ports:[32000-32009]"},
    ]
}


@pytest.fixture
async def cluster(tmp_path):
    async with running_cluster(from_dict(CLUSTER, "test"), str(tmp_path / "work")) as c:
        yield c


@pytest.fixture
async def framework(cluster, tmp_path):
    config = framework_config(
        master=cluster.url,
        name=f"test-{tmp_path.name}",
        id_file=str(tmp_path / "fw.json"),
        refuse_seconds=1,
        orphan_grace_seconds=0.5,
    )
    fw = MesosFramework(config)
    await fw.ensure_started(timeout=10)
    yield fw
    for record in list(fw.tasks.values()):
        if record.active:
            await fw.kill(record.task_id, timeout=10)
    await fw.stop()


async def test_launch_runs_on_plain_agent_with_ports_from_its_offer(framework):
    record = await asyncio.wait_for(framework.launch(sleeper("alice")), 20)
    assert record.state == "TASK_RUNNING"
    assert record.hostname == "cpu-1"  # the GPU agent is avoided for a CPU task
    assert len(record.ports) == 1 and 31000 <= record.ports[0] <= 31009
    killed = await framework.kill(record.task_id, timeout=10)
    assert killed.state == "TASK_KILLED"


async def test_withdrawn_request_is_never_launched_later(framework):
    holders = [await asyncio.wait_for(framework.launch(sleeper(k, cpus=1.5)), 20) for k in "ab"]
    assert {h.hostname for h in holders} == {"cpu-1", "gpu-1"}  # the cluster is now full
    waiting = asyncio.ensure_future(framework.launch(sleeper("late", cpus=1.5)))
    await asyncio.sleep(0.5)
    assert not waiting.done()
    waiting.cancel()  # what JupyterHub does when the spawn times out or is cancelled
    with pytest.raises(asyncio.CancelledError):
        await waiting
    for holder in holders:
        await framework.kill(holder.task_id, timeout=10)
    await asyncio.sleep(2)  # resources are offered again: a late launch would happen now
    assert not framework.pending
    assert [t.task_id for t in framework.tasks.values() if t.active] == []


async def test_idle_framework_suppresses_offers(framework):
    record = await asyncio.wait_for(framework.launch(sleeper("bob")), 20)
    await asyncio.sleep(0.5)
    before = framework.metrics["offers"]._value.get()
    await asyncio.sleep(2)
    assert framework.metrics["offers"]._value.get() == before
    assert set(framework.suppressed) == set(framework.config.roles)
    await framework.kill(record.task_id, timeout=10)


async def test_broken_request_fails_alone(framework):
    broken = sleeper("broken")
    # A spec Mesos would refuse: bridge networking for a plain command task.
    broken.spec = dataclasses.replace(broken.spec, network_mode="bridge")
    with pytest.raises(LaunchFailed, match="network_mode 'bridge' needs an image"):
        await asyncio.wait_for(framework.launch(broken), 20)
    record = await asyncio.wait_for(framework.launch(sleeper("carol")), 20)
    assert record.state == "TASK_RUNNING"


async def test_unclaimed_task_of_this_hub_is_killed_as_orphan(framework, tmp_path):
    record = await asyncio.wait_for(framework.launch(sleeper("dave")), 20)
    # A restarted hub: a new framework object re-subscribes with the persisted id and no
    # spawner claims the task.
    await framework.stop()
    again = MesosFramework(framework.config)
    await again.ensure_started(timeout=10)
    try:
        for _ in range(100):
            known = again.task(record.task_id)
            if known is not None and known.state == "TASK_KILLED":
                break
            await asyncio.sleep(0.1)
        assert again.task(record.task_id).state == "TASK_KILLED"
        assert again.client.framework_id == framework.client.framework_id
    finally:
        await again.stop()


async def test_orphan_launched_under_the_legacy_names_is_still_found(cluster, tmp_path):
    """Migration of task names (KubeSpawner's legacy escaping -> the safe scheme): a task a hub
    launched before the change, under `jupyter.lab-2dhub...`, is still this hub's orphan."""
    config = framework_config(
        master=cluster.url,
        name=f"legacy-{tmp_path.name}",
        id_file=str(tmp_path / "fw.json"),
        hub_id="lab-hub",
        refuse_seconds=1,
        orphan_grace_seconds=0.5,
    )
    old_id = naming.legacy_task_id("lab-hub", "erin", "exp-1", "n1")
    assert old_id.startswith("jupyter.lab-2dhub.") and not old_id.startswith(
        naming.task_id_prefix("lab-hub")
    )
    request = sleeper("erin")
    request.spec = dataclasses.replace(request.spec, task_id=old_id)  # as the old hub named it
    first = MesosFramework(config)
    await first.ensure_started(timeout=10)
    record = await asyncio.wait_for(first.launch(request), 20)
    assert record.task_id == old_id
    await first.stop()
    again = MesosFramework(config)  # the upgraded hub: nobody claims the old task
    await again.ensure_started(timeout=10)
    try:
        for _ in range(100):
            known = again.task(old_id)
            if known is not None and known.state == "TASK_KILLED":
                break
            await asyncio.sleep(0.1)
        assert again.task(old_id).state == "TASK_KILLED"
    finally:
        await again.stop()
