"""The two masters the conformance suites run against, behind one small interface.

``localmesos`` is our in-process master with in-process agents; ``real`` is Apache Mesos 1.11.0
(``tests/services/real_mesos.py``) with one ``mesos-agent`` process per host. Both get the same
agents (``AGENTS``), so a test reads the same on both and observes only what a framework or an
operator could: the v1 scheduler API, ``/master/state``, ``/master/slaves``, sandbox files.

Agent faults, as a test names them:

- ``stop_agent`` / ``start_agent``: the machine goes down (the agent and its tasks die) and boots
  again as a new agent (a new agent id);
- ``kill_agent`` / ``restart_agent``: the agent process crashes; its tasks keep running and the
  restarted agent recovers them and re-registers with the same id;
- ``partition`` / ``heal``: the agent stops answering (SIGSTOP on real Mesos) and comes back.

localmesos has no agent process to crash or freeze: both of the latter drop the in-process
agent's link to the master and re-register it later with its tasks, which is what the master sees.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient

from mesosspawner.localmesos.cluster import LocalCluster
from mesosspawner.localmesos.config import from_dict
from tests.services import real_mesos

AGENTS = (
    {
        "hostname": "agent-1",
        "resources": "cpus:4;mem:4096;disk:10000;ports:[31000-31009]",
        "attributes": "rack:r1",
    },
    {
        "hostname": "gpu-1",
        "resources": "cpus:4;mem:4096;disk:10000;gpus:2;ports:[32000-32009]",
        "attributes": "rack:r1;gpu_model:a100",
    },
    {
        "hostname": "spark-1",
        "resources": "cpus(spark):4;mem(spark):4096;cpus:1;mem:512;disk:1000;ports:[33000-33009]",
        "attributes": "rack:r2;spark_cluster:prod",
    },
)

# Seconds after which an agent that stopped answering is marked unreachable: localmesos's
# agent_unreachable_timeout; real Mesos's agent_ping_timeout x max_agent_ping_timeouts (1 s x 3).
UNREACHABLE_AFTER = {"localmesos": 1.0, "real": 3.0}


def cluster_config():
    return from_dict({"agent": [dict(a) for a in AGENTS]}, "<test cluster>")


class Backend:
    """What every backend offers the tests."""

    name: str
    url: str
    # The master's heartbeat interval and the agents' first status update retry, in seconds.
    heartbeat_interval: float
    status_retry_interval: float

    @property
    def hostnames(self) -> list[str]:
        return [a["hostname"] for a in AGENTS]

    @property
    def unreachable_after(self) -> float:
        return UNREACHABLE_AFTER[self.name]

    async def state(self) -> dict:
        body = (await AsyncHTTPClient().fetch(f"{self.url}/master/state")).body
        return json.loads(body)

    async def slaves(self) -> list[dict]:
        body = (await AsyncHTTPClient().fetch(f"{self.url}/master/slaves")).body
        return json.loads(body)["slaves"]

    async def agent_id(self, hostname: str) -> str:
        for a in await self.slaves():
            if a["hostname"] == hostname and a.get("active", True):
                return a["id"]
        raise KeyError(f"no active agent {hostname!r}")

    def sandbox(self, hostname: str, agent_id: str, framework_id: str, task_id: str) -> str:
        """A command task's sandbox (its executor id is its task id on both backends)."""
        return os.path.join(
            self.agent_work_dir(hostname),
            "slaves",
            agent_id,
            "frameworks",
            framework_id,
            "executors",
            task_id,
            "runs",
            "latest",
        )

    def agent_work_dir(self, hostname: str) -> str:
        raise NotImplementedError

    async def stop_agent(self, hostname: str) -> None:
        raise NotImplementedError

    async def start_agent(self, hostname: str) -> None:
        raise NotImplementedError

    async def kill_agent(self, hostname: str) -> None:
        raise NotImplementedError

    async def restart_agent(self, hostname: str) -> None:
        raise NotImplementedError

    async def partition(self, hostname: str) -> None:
        raise NotImplementedError

    async def heal(self, hostname: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


@dataclass
class LocalBackend(Backend):
    cluster: LocalCluster
    name: str = "localmesos"

    @property
    def url(self) -> str:  # type: ignore[override]
        return self.cluster.url

    @property
    def heartbeat_interval(self) -> float:  # type: ignore[override]
        return self.cluster.heartbeat_interval

    @property
    def status_retry_interval(self) -> float:  # type: ignore[override]
        return self.cluster.status_retry_interval

    def agent_work_dir(self, hostname: str) -> str:
        return self.cluster.work_dir

    async def stop_agent(self, hostname: str) -> None:
        await self.cluster.stop_agent(hostname)

    async def start_agent(self, hostname: str) -> None:
        await self.cluster.start_agent(hostname)

    async def kill_agent(self, hostname: str) -> None:
        self.cluster.disconnect_agent(hostname)

    async def restart_agent(self, hostname: str) -> None:
        self.cluster.reconnect_agent(hostname, restarted=True)

    async def partition(self, hostname: str) -> None:
        self.cluster.partition_agent(hostname)

    async def heal(self, hostname: str) -> None:
        self.cluster.reconnect_agent(hostname)

    async def close(self) -> None:
        await self.cluster.stop()


@dataclass
class RealBackend(Backend):
    cluster: real_mesos.RealCluster
    name: str = "real"
    heartbeat_interval: float = 15.0  # DEFAULT_HEARTBEAT_INTERVAL, not a master flag
    status_retry_interval: float = 10.0  # STATUS_UPDATE_RETRY_INTERVAL_MIN

    @property
    def url(self) -> str:  # type: ignore[override]
        return self.cluster.master.url

    def agent_work_dir(self, hostname: str) -> str:
        return str(self.cluster.agent(hostname).work_dir / "work")

    async def _wait_registered(self, hostname: str) -> None:
        agent = self.cluster.agent(hostname)
        await asyncio.to_thread(agent.wait_registered, self.cluster.master, 30)

    async def stop_agent(self, hostname: str) -> None:
        agent = self.cluster.agent(hostname)
        agent.kill()
        real_mesos.kill_processes_under(agent.work_dir)
        # A machine that boots again has no checkpointed agent: it registers as a new agent.
        shutil.rmtree(Path(self.agent_work_dir(hostname)) / "meta", ignore_errors=True)

    async def start_agent(self, hostname: str) -> None:
        self.cluster.agent(hostname).start()
        await self._wait_registered(hostname)

    async def kill_agent(self, hostname: str) -> None:
        self.cluster.agent(hostname).kill()

    async def restart_agent(self, hostname: str) -> None:
        self.cluster.agent(hostname).start()
        await self._wait_registered(hostname)

    async def partition(self, hostname: str) -> None:
        self.cluster.agent(hostname).send(signal.SIGSTOP)

    async def heal(self, hostname: str) -> None:
        self.cluster.agent(hostname).send(signal.SIGCONT)

    async def close(self) -> None:
        for a in self.cluster.agents:
            a.send(signal.SIGCONT)  # a partitioned agent cannot act on SIGTERM
        await asyncio.to_thread(self.cluster.stop)


async def start_local(work_dir: Path, **overrides) -> LocalBackend:
    """localmesos with short heartbeats, retries and timeouts."""
    settings = {
        "port": 0,
        "heartbeat_interval": 0.5,
        "status_retry_interval": 0.5,
        "allocation_interval": 0.2,
        "agent_unreachable_timeout": UNREACHABLE_AFTER["localmesos"],
        **overrides,
    }
    cluster = LocalCluster(cluster_config(), work_dir=str(work_dir), **settings)
    await cluster.start()
    return LocalBackend(cluster)


async def start_real(work_dir: Path, **kwargs) -> RealBackend:
    """Real Mesos: one master (MASTER_TEST_FLAGS) and the same agents as localmesos."""
    cluster = await asyncio.to_thread(real_mesos.start_cluster, work_dir, AGENTS, **kwargs)
    return RealBackend(cluster)
