"""Leader change through a real ZooKeeper: two localmesos masters, an agent process, our client.

The client finds the leader through ``zk://``; when the leader dies it must re-subscribe with the
new one under the same framework id within 5 s, with the task still running. A master that exits
closes its ZooKeeper session at once; one that crashes (SIGKILL) stays "leader" in ZooKeeper
until its session expires (10 s, as Mesos's default), so there the 5 s count from the moment
ZooKeeper names the new leader: no client can do better.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import uuid

import pytest

from mesosspawner.localmesos.testing import command_task
from mesosspawner.mesos.detector import leader_child
from tests.services.fakes import Recorder
from tests.services.pymesos_peer import get_json, start_localmesos

pytestmark = pytest.mark.timeout(180)

AGENT = "client-failover-1"
USER = os.environ.get("USER") or "root"
WITHIN = 5.0


class Scheduler(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.offered: list[dict] = []
        self.subscribed_at: list[float] = []

    async def subscribed(self, event):
        self.subscribed_at.append(asyncio.get_running_loop().time())
        await super().subscribed(event)

    async def offers(self, event):
        self.offered.extend(o.raw for o in event.offers)
        await super().offers(event)

    def states(self, task_id: str) -> list[str]:
        return [s.state for s in self.of("update") if s.task_id == task_id]


async def blocking(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def eventually(what: str, check, timeout: float = 30.0):
    """Poll a blocking ``check`` off the loop until it is truthy."""
    last = None
    async with asyncio.timeout(timeout):
        while True:
            try:
                last = await blocking(check)
            except (OSError, ValueError):
                last = None
            if last:
                return last
            await asyncio.sleep(0.1)
    raise AssertionError(f"{what}: last seen {last!r}")


def leader_port(hosts: str, path: str) -> int | None:
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoNodeError

    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=10)
    try:
        child = leader_child(zk.get_children(path)) if zk.exists(path) else None
        if child is None:
            return None
        try:
            data, _ = zk.get(f"{path}/{child}")
        except NoNodeError:  # the dead leader's session expired between the list and the read
            return None
        return json.loads(data)["address"]["port"]
    finally:
        zk.stop()
        zk.close()


def task_states(master, framework_id: str) -> dict[str, str]:
    state = get_json(f"{master.url}/master/state")
    return {
        t["id"]: t["state"]
        for f in state["frameworks"]
        if f["id"] == framework_id
        for t in f.get("tasks", [])
    }


@pytest.mark.parametrize("death", ["exit", "crash"])
async def test_resubscribes_with_the_new_leader_within_5_s(
    death, zookeeper, unique_zk_path, tmp_path, make_client
):
    zk_url = zookeeper.url(unique_zk_path)
    started = []
    try:
        args = ["--no-agents", "--zk", zk_url, "--port", "0", "--heartbeat-interval", "1"]
        args += ["--log-level", "INFO"]
        args += ["--allow-root-tasks"]  # the sleeper runs as this user, root in CI
        first = await blocking(start_localmesos, args, tmp_path / "master-1.log")
        started.append(first)
        await eventually(
            "the first master leads", lambda: leader_port(zookeeper.hosts, unique_zk_path)
        )
        second = await blocking(start_localmesos, args, tmp_path / "master-2.log")
        started.append(second)
        agent_args = ["agent", "--master", zk_url, "--hostname", AGENT]
        agent_args += ["--resources", "cpus:2;mem:1024;ports:[41400-41499]"]
        agent_args += ["--work-dir", str(tmp_path / "agent"), "--log-level", "INFO"]
        started.append(await blocking(start_localmesos, agent_args, tmp_path / "agent.log"))

        handler = Scheduler()
        info = {"user": USER, "name": "client-failover", "failover_timeout": 600.0}
        client = make_client(zk_url, handler, info, backoff_max=2.0)
        await client.start()
        await handler.wait_for(lambda: handler.offered, timeout=30)
        framework_id = client.framework_id
        assert client.master_info["port"] == first.port
        offer = handler.offered[-1]
        task_id = f"failover-{uuid.uuid4().hex[:8]}"
        await client.launch(
            [offer["id"]["value"]], [command_task(offer, task_id, "sleep 120", cpus=0.1, mem=32)]
        )
        await handler.wait_for(lambda: "TASK_RUNNING" in handler.states(task_id), timeout=30)

        loop = asyncio.get_running_loop()
        if death == "exit":
            first.proc.send_signal(signal.SIGTERM)
            died = loop.time()
            await blocking(first.proc.wait, 20)
            start_of_count = died
        else:
            first.kill()
            await eventually(
                "ZooKeeper names the second master",
                lambda: leader_port(zookeeper.hosts, unique_zk_path) == second.port,
            )
            start_of_count = loop.time()
        await handler.wait_for(lambda: len(handler.subscribed_at) >= 2, timeout=30)

        took = handler.subscribed_at[-1] - start_of_count
        print(f"re-subscribed {took:.2f} s after the leader {death}")
        assert took < WITHIN, f"re-subscribed {took:.1f} s after the leader change"
        assert client.framework_id == framework_id
        assert client.master_info["port"] == second.port
        assert "disconnected" in handler.names()
        await eventually(
            "the agent re-registers with its running task",
            lambda: task_states(second, framework_id) == {task_id: "TASK_RUNNING"},
            timeout=60,
        )
        count = handler.states(task_id).count("TASK_RUNNING")
        await client.reconcile([(task_id, offer["agent_id"]["value"])])
        await handler.wait_for(
            lambda: handler.states(task_id).count("TASK_RUNNING") > count, timeout=30
        )
        await client.kill(task_id)
        await handler.wait_for(lambda: "TASK_KILLED" in handler.states(task_id), timeout=30)
    finally:
        for process in reversed(started):
            await blocking(process.stop)
