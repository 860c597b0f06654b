"""The framework's view of the cluster on bad days, against an in-process localmesos: a hub
restarted with notebooks still running (issue 10 item 1) and a cluster shared with another
framework that holds resources (item 2). "Never fits" must come from the agents' totals."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub

from mesosspawner import MesosSpawner, placement
from mesosspawner.framework import MesosFramework, TaskRecord
from mesosspawner.localmesos.config import from_dict
from mesosspawner.localmesos.testing import RawScheduler, command_task, running_cluster
from mesosspawner.mesos.resources import scalar
from tests.services.fakes import fake_passwd
from tests.services.sleepers import sleeper

GPU_CLUSTER = {
    "agent": [
        {"hostname": "cpu-1", "resources": "cpus:2;mem:2048;ports:[33100-33109]"},
        {"hostname": "gpu-1", "resources": "cpus:2;mem:2048;gpus:1;ports:[33110-33119]"},
    ]
}
# Spread alone would put a second notebook next to a small survivor on big-1.
UNEVEN_CLUSTER = {
    "agent": [
        {"hostname": "big-1", "resources": "cpus:4;mem:4096;ports:[33120-33129]"},
        {"hostname": "small-1", "resources": "cpus:1;mem:1024;ports:[33130-33139]"},
    ]
}


@pytest.fixture(autouse=True)
def accounts(monkeypatch) -> None:
    """alice and friends are accounts of the hub host (identity.resolve needs one)."""
    fake_passwd(monkeypatch)


def make_spawner(url: str, tmp_path, **traits) -> MesosSpawner:
    user = SimpleNamespace(name="alice", id=1, groups=[], url="/user/alice/")
    return MesosSpawner(
        user=user,
        hub=Hub(ip="127.0.0.1", port=8081, base_url="/hub/"),
        mesos_master=url,
        framework_name=f"view-{tmp_path.name}",
        framework_id_file=str(tmp_path / "fw.json"),
        orphan_grace_seconds=0,
        mem_limit=64 * 1024 * 1024,
        **traits,
    )


async def restarted(first: MesosFramework, survivor: TaskRecord) -> MesosFramework:
    """What a hub restart does: the old framework object is gone; a new one re-subscribes with
    the persisted id, and the survivor's spawner claims it from its saved state."""
    await first.stop()
    again = MesosFramework.shared(first.config)
    again.track(
        TaskRecord(
            survivor.task_id,
            agent_id=survivor.agent_id,
            hostname=survivor.hostname,
            ports=survivor.ports,
            state="TASK_UNKNOWN",
        )
    )
    await again.ensure_started(timeout=10)
    await asyncio.wait_for(again.reconciled.wait(), 10)
    for _ in range(50):
        if again.task(survivor.task_id).state == "TASK_RUNNING":
            break
        await asyncio.sleep(0.1)
    assert again.task(survivor.task_id).state == "TASK_RUNNING"
    return again


async def _stop(fw: MesosFramework) -> None:
    for record in list(fw.tasks.values()):
        if record.active:
            await fw.kill(record.task_id, timeout=10)
    await fw.stop()


async def test_restart_with_the_only_gpu_in_use_then_a_gpu_spawn_waits(tmp_path):
    async with running_cluster(from_dict(GPU_CLUSTER, "t"), str(tmp_path / "work")) as cluster:
        s = make_spawner(cluster.url, tmp_path, gpus=1, start_timeout=4)
        first = MesosFramework(s.framework_config())
        await first.ensure_started(timeout=10)
        survivor = await asyncio.wait_for(first.launch(sleeper("gpu-user", gpus=1)), 20)
        assert survivor.hostname == "gpu-1"
        fw = await restarted(first, survivor)
        try:
            await fw.refresh_capacity(max_age=0, timeout=3)
            assert fw.gpu_agents() == {survivor.agent_id}
            gpu = s._request_for()
            assert placement.unmet(gpu, fw.capacity()) is None
            assert "GPU" in (placement.shortfall(gpu, fw.capacity()) or "")
            # The person's spawn waits for the GPU (and gives up at start_timeout saying so).
            with pytest.raises(Exception) as info:
                await s.start()
            message = str(getattr(info.value, "jupyterhub_message", None) or info.value)
            assert "never start" not in message, message
            assert "Gave up" in message and "GPU" in message, message
        finally:
            await _stop(fw)


async def test_restart_unique_hostname_keeps_a_second_notebook_off_the_survivors_agent(tmp_path):
    async with running_cluster(from_dict(UNEVEN_CLUSTER, "t"), str(tmp_path / "work")) as cluster:
        s = make_spawner(cluster.url, tmp_path)
        first = MesosFramework(s.framework_config())
        await first.ensure_started(timeout=10)
        survivor = await asyncio.wait_for(first.launch(sleeper("first", cpus=0.25)), 20)
        assert survivor.hostname == "big-1"
        fw = await restarted(first, survivor)
        try:
            unique = [["hostname", "UNIQUE"]]
            second = await asyncio.wait_for(
                fw.launch(sleeper("second", cpus=0.25, constraints=unique)), 20
            )
            assert second.hostname == "small-1"
        finally:
            await _stop(fw)


async def test_restart_relearns_survivors_resources_and_agent(tmp_path):
    async with running_cluster(from_dict(GPU_CLUSTER, "t"), str(tmp_path / "work")) as cluster:
        s = make_spawner(cluster.url, tmp_path)
        first = MesosFramework(s.framework_config())
        await first.ensure_started(timeout=10)
        survivor = await asyncio.wait_for(first.launch(sleeper("gpu-user", gpus=1)), 20)
        await first.stop()
        # Not claimed by any spawner yet (its spawner's state is loaded later, or never).
        fw = MesosFramework.shared(first.config)
        await fw.ensure_started(timeout=10)
        try:
            for _ in range(50):
                record = fw.task(survivor.task_id)
                if record is not None and record.resources:
                    break
                await asyncio.sleep(0.1)
            record = fw.task(survivor.task_id)
            assert record is not None and record.agent_id == survivor.agent_id
            assert scalar(record.resources, "gpus") == 1
            assert scalar(record.resources, "cpus") == 0.5
        finally:
            await _stop(fw)


async def test_gpus_held_by_another_framework_mean_wait_not_never(tmp_path):
    async with running_cluster(from_dict(GPU_CLUSTER, "t"), str(tmp_path / "work")) as cluster:
        # A second framework (think Spark) takes the only GPU.
        other = RawScheduler(cluster.url)
        await other.subscribe(
            {"user": "nobody", "name": "spark", "capabilities": [{"type": "GPU_RESOURCES"}]}
        )
        try:
            offers = await other.offers()
            gpu_offer = next(o for o in offers if o["hostname"] == "gpu-1")
            task = command_task(gpu_offer, "spark-gpu", "sleep 60", cpus=0.5, mem=64, gpus=1)
            await other.accept([gpu_offer["id"]["value"]], [task])
            assert (await other.update("spark-gpu"))["state"] in ("TASK_STARTING", "TASK_RUNNING")

            s = make_spawner(cluster.url, tmp_path, gpus=1, start_timeout=4)
            fw = s.framework
            await fw.ensure_started(timeout=10)
            try:
                await fw.refresh_capacity(max_age=0, timeout=3)
                gpu_agent = gpu_offer["agent_id"]["value"]
                assert fw.gpu_agents() == {gpu_agent}  # known from its totals, not offers
                caps = fw.capacity()
                gpu = s._request_for()
                assert placement.unmet(gpu, caps) is None
                assert "GPU" in (placement.shortfall(gpu, caps) or "")
                big = placement.Request(key="big", cpus=1.8, mem=64)
                assert placement.unmet(big, caps) is None  # 2 cpus on each agent in total
                with pytest.raises(Exception) as info:
                    await s.start()
                message = str(getattr(info.value, "jupyterhub_message", None) or info.value)
                assert "never start" not in message, message
                assert "Gave up" in message, message
            finally:
                await fw.stop()
        finally:
            await other.close()
