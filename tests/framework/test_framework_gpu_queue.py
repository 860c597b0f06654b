"""The GPU queue inside MesosFramework, against an in-process localmesos with one GPU: the
order offers are used in, a freed GPU going to the head of the queue within an offer cycle,
quotas refused at once, idle culling after a warning, and the state kept across a restart."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from mesosspawner.framework import LaunchFailed, MesosFramework
from mesosspawner.gpuqueue.policy import GpuClaim, load_policy
from mesosspawner.localmesos.config import from_dict
from mesosspawner.localmesos.testing import running_cluster
from tests.services.fakes import framework_config, stop_frameworks
from tests.services.sleepers import sleeper

CLUSTER = {
    "agent": [
        {"hostname": "gpu-1", "resources": "cpus:4;mem:4096;gpus:1;ports:[32000-32009]"},
    ]
}


class Lines:
    """A LaunchObserver that keeps the GPU queue's lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def in_queue(self, line: str) -> None:
        if not self.lines or self.lines[-1] != line:
            self.lines.append(line)

    def __getattr__(self, name):  # every other observer call is ignored
        return lambda *args, **kwargs: None


def gpu_request(user: str, group: str = "", server: str = "", **claim) -> tuple:
    req = sleeper(f"{user}/{server}", gpus=1)
    req.gpu = GpuClaim(user=user, server=server, groups=(group,) if group else (), **claim)
    req.observer = Lines()
    return req


@pytest.fixture
async def cluster(tmp_path):
    async with running_cluster(from_dict(CLUSTER, "test"), str(tmp_path / "work")) as c:
        yield c


def make_framework(cluster, tmp_path, **policy) -> MesosFramework:
    config = framework_config(
        master=cluster.url,
        name=f"test-{tmp_path.name}",
        refuse_seconds=5,
        gpu_queue=load_policy(**policy),
        gpu_state_file=str(tmp_path / "gpu-queue.json"),
        gpu_queue_tick=0.2,
    )
    return MesosFramework(config)


@pytest.fixture
async def frameworks(cluster, tmp_path):
    made: list[MesosFramework] = []

    async def make(**policy) -> MesosFramework:
        fw = make_framework(cluster, tmp_path, **policy)
        await fw.ensure_started(timeout=10)
        made.append(fw)
        return fw

    yield make
    await stop_frameworks(made)


async def until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


async def test_the_freed_gpu_goes_to_the_lighter_group_within_an_offer_cycle(frameworks):
    fw = await frameworks(groups={"red": {}, "blue": {}}, user_quota=2)
    holder = await asyncio.wait_for(fw.launch(gpu_request("heavy", "red", "one")), 20)
    await asyncio.sleep(0.5)  # red's usage grows
    heavy = gpu_request("heavy", "red", "two")
    heavy_waits = asyncio.ensure_future(fw.launch(heavy))
    await until(lambda: heavy.observer.lines, 5, "heavy's line")
    light = gpu_request("light", "blue")
    light_waits = asyncio.ensure_future(fw.launch(light))
    await until(lambda: light.observer.lines, 5, "light's line")
    assert light.observer.lines[-1].startswith("1st in the GPU queue")
    await until(lambda: heavy.observer.lines[-1].startswith("2nd in the GPU queue"), 5, "heavy 2nd")

    # The GPU reaches the head of the queue within an offer cycle (0.2 s here), not after the
    # decline filter (refuse_seconds=5), and not the one who asked first.
    await fw.kill(holder.task_id, timeout=10)
    freed = time.monotonic()
    record = await asyncio.wait_for(light_waits, 10)
    assert time.monotonic() - freed < 2.0
    assert record.state == "TASK_RUNNING"
    assert not heavy_waits.done()
    heavy_waits.cancel()


async def test_a_request_beyond_a_quota_fails_at_once_and_nothing_waits(frameworks):
    fw = await frameworks(user_quota=1)
    await asyncio.wait_for(fw.launch(gpu_request("ann", server="one")), 20)
    started = time.monotonic()
    with pytest.raises(LaunchFailed, match="Your GPU quota is 1 GPU and you hold 1 GPU"):
        await fw.launch(gpu_request("ann", server="two"))
    assert time.monotonic() - started < 1.0
    assert not fw.pending and not fw.gpu_queue.tickets


async def test_an_idle_gpu_server_is_warned_culled_and_its_gpu_goes_to_the_queue(frameworks):
    fw = await frameworks(warning_seconds=0.5)
    idle = await asyncio.wait_for(fw.launch(gpu_request("ann", idle_limit=1.0)), 20)
    # Until JupyterHub's first poll (the server is up) no idle clock runs: a slow start is
    # never culled as idle.
    await asyncio.sleep(2.0)
    fw.gpu_queue.refresh()
    assert not fw.gpu_queue.notices_for("ann") and fw.task(idle.task_id).active
    fw.gpu_queue.note_activity(idle.task_id, None)  # the first poll
    waiter = gpu_request("bob")
    waits = asyncio.ensure_future(fw.launch(waiter))
    await until(lambda: fw.gpu_queue.notices_for("ann"), 5, "ann's warning")
    assert "will be stopped in" in fw.gpu_queue.notices_for("ann")[0]
    record = await asyncio.wait_for(waits, 15)
    assert record.state == "TASK_RUNNING"
    assert fw.task(idle.task_id).state == "TASK_KILLED"
    assert "stopped by the GPU culler" in fw.stops.kill_reason(idle.task_id)
    assert "the next person in the GPU queue" in fw.stops.kill_reason(idle.task_id)


async def test_usage_and_running_sessions_survive_a_restart(cluster, tmp_path, frameworks):
    fw = await frameworks()
    first = await asyncio.wait_for(fw.launch(gpu_request("ann")), 20)
    await asyncio.sleep(1.0)
    await fw.kill(first.task_id, timeout=10)
    second = await asyncio.wait_for(fw.launch(gpu_request("bob")), 20)

    # What a restarted hub finds next to its framework id file (written as the queue looks).
    def saved_with_both():
        data = json.loads((tmp_path / "gpu-queue.json").read_text())
        return data if {u["user"] for u in data["usage"]} == {"ann", "bob"} else None

    saved = await until(saved_with_both, 5, "both people's usage in the state file")
    assert [s["key"] for s in saved["sessions"]] == [second.task_id]
    assert saved["live"]["running"][0]["user"] == "bob"

    again = make_framework(cluster, tmp_path)
    usage = {user: u.value for (_, user), u in again.gpu_queue.usage.items()}
    assert usage["ann"] > 0.9  # about a GPU-second
    assert second.task_id in again.gpu_queue.sessions
    assert len(again.gpu_queue.lengths) == 1
