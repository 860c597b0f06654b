"""One test cluster, whatever the master: localmesos or real Apache Mesos 1.11.0.

A ``Cluster`` is what a test sees of a Mesos cluster: where a scheduler connects (``url``: a
master or ``zk://``), the leading master's HTTP address (``master_url``), its agents, the master's
own view (``state()``, ``slaves()``, ``tasks()``), a task's sandbox, and the faults a test
names. A test body written against it runs on either master; a fault a kind of cluster cannot
show raises ``Unsupported`` naming it.

Three ways to run one, one face:

- ``localmesos`` in the test's own process (``InProcessLocalmesos``; milliseconds to start; the
  conformance suites, framework tests);
- ``localmesos`` as processes (``LocalmesosProcesses``: the CLI master, or two on ZooKeeper, and
  with ``agent_processes`` one process per agent), for hubs that run as processes anyway and for
  clusters shared by a module (no event loop of a test holds it);
- ``real`` Mesos (``RealMesos``: ``mesos-master`` and one ``mesos-agent`` per host).

Agent faults, as a test names them:

- ``stop_agent`` / ``start_agent``: the machine goes down (the agent and its tasks die) and boots
  again as a new agent (a new agent id);
- ``kill_agent`` / ``restart_agent``: the agent process crashes; its tasks keep running and the
  restarted agent recovers them and re-registers with the same id;
- ``partition`` / ``heal``: the agent stops answering (SIGSTOP of its process) and comes back.

In-process localmesos has no agent process to crash or freeze: both of the latter drop the
agent's link to the master and re-register it later with its tasks, which is what the master
sees. A localmesos agent process keeps no checkpoint, so it can crash but not recover.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import random
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient

from mesosspawner.localmesos.cluster import LocalCluster
from mesosspawner.localmesos.config import from_dict
from mesosspawner.testing import real_mesos
from mesosspawner.testing.hub import run_blocking
from mesosspawner.testing.localmesos_procs import LocalMesos, LocalMesosAgent
from mesosspawner.testing.mesos_security import Security
from mesosspawner.testing.zookeeper import open_parents
from tests.services.docker import LOCK_DIR

KINDS = ("localmesos", "real")


@dataclass(frozen=True)
class AgentSpec:
    """One agent as ``mesos-agent --resources/--attributes`` and localmesos's cluster file
    write it."""

    hostname: str
    resources: str
    attributes: str = ""
    # What an agent does only when configured for it (images on the Mesos containerizer,
    # host-path volumes on command tasks), said once per master kind: localmesos's cluster-file
    # keys (``isolation``, ``image_providers``) and a real agent's flags.
    local_keys: tuple[tuple[str, str], ...] = ()
    real_flags: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        """The agent as localmesos's cluster file takes it."""
        return {
            "hostname": self.hostname,
            "resources": self.resources,
            "attributes": self.attributes,
            **dict(self.local_keys),
        }

    def toml(self) -> str:
        return "[[agent]]\n" + "".join(f'{k} = "{v}"\n' for k, v in self.as_dict().items())

    def agent_args(self) -> list[str]:
        """The cluster-file keys as ``mesosspawner-localmesos agent`` flags."""
        return [arg for k, v in self.local_keys for arg in (f"--{k.replace('_', '-')}", v)]

    def real_dict(self) -> dict:
        """The agent as ``real_mesos.start_cluster`` takes it."""
        out = {"hostname": self.hostname, "resources": self.resources}
        out["attributes"] = self.attributes
        if self.real_flags:
            out["extra"] = self.real_flags
        return out


PORT_BLOCKS = range(20000, 30000, 100)
_held_blocks: dict[int, object] = {}  # base -> its lock file, held until released or exit


def port_block() -> int:
    """The first port of a block of 100 that no other test process holds (a lock file each,
    under LOCK_DIR, held until ``release_port_block`` or this process's exit): agents of
    clusters that run at the same time, in parallel workers or sessions, never offer the same
    ports, and a notebook left behind by another run never answers for this one's."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    start = random.Random().randrange(len(PORT_BLOCKS))
    for i in range(len(PORT_BLOCKS)):
        base = PORT_BLOCKS[(start + i) % len(PORT_BLOCKS)]
        handle = open(LOCK_DIR / f"ports-{base}", "a")  # noqa: SIM115 - held on purpose
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _held_blocks[base] = handle
        return base
    raise RuntimeError(f"every port block of {PORT_BLOCKS} is held by another test process")


def release_port_block(base: int) -> None:
    handle = _held_blocks.pop(base, None)
    if handle is not None:
        handle.close()


def lab_agents(base: int | None = None) -> tuple[AgentSpec, ...]:
    """A small lab: a plain agent, a GPU agent (2 GPUs) and an agent whose cpus/mem are reserved
    for role ``spark``, on ports of their own (``port_block``)."""
    if base is None:
        base = port_block()
    return (
        AgentSpec("cpu-1", f"cpus:4;mem:8192;disk:10000;ports:[{base}-{base + 29}]", "rack:r1"),
        AgentSpec(
            "gpu-1",
            f"cpus:4;mem:8192;disk:10000;gpus:2;ports:[{base + 30}-{base + 59}]",
            "rack:r2;gpu_model:a100",
            # A lab's GPU agents run the GPU images (the Mesos containerizer with an image). Real
            # agents here cannot (tests/e2e/test_real_gpu_image.py says why): localmesos only.
            local_keys=(
                ("isolation", "filesystem/linux,docker/runtime"),
                ("image_providers", "docker"),
            ),
        ),
        AgentSpec(
            "spark-1",
            f"cpus(spark):4;mem(spark):8192;cpus:0.5;mem:512;disk:10000;"
            f"ports:[{base + 60}-{base + 99}]",
            "rack:r3;spark_cluster:prod",
        ),
    )


# The conformance suites' agents: fixed ports, which their checks of offers name.
CONFORMANCE_AGENTS = (
    AgentSpec("agent-1", "cpus:4;mem:4096;disk:10000;ports:[31000-31009]", "rack:r1"),
    AgentSpec(
        "gpu-1", "cpus:4;mem:4096;disk:10000;gpus:2;ports:[32000-32009]", "rack:r1;gpu_model:a100"
    ),
    AgentSpec(
        "spark-1",
        "cpus(spark):4;mem(spark):4096;cpus:1;mem:512;disk:1000;ports:[33000-33009]",
        "rack:r2;spark_cluster:prod",
    ),
)

# Seconds after which an agent that stopped answering is marked unreachable: localmesos's
# agent_unreachable_timeout; real Mesos's agent_ping_timeout x max_agent_ping_timeouts (1 s x 3).
UNREACHABLE_AFTER = {"localmesos": 1.0, "real": 3.0}


class Unsupported(NotImplementedError):
    """This kind of cluster cannot show that fault."""


def tasks_by_id(state: dict) -> dict[str, dict]:
    """Every task of every framework, running, unreachable or completed (state.json splits
    them; real Mesos lists TASK_UNREACHABLE ones only under ``unreachable_tasks``)."""
    out = {}
    for fw in state["frameworks"] + state.get("completed_frameworks", []):
        for task in fw.get("completed_tasks", []) + fw.get("unreachable_tasks", []) + fw["tasks"]:
            out[task["id"]] = dict(task, framework=fw)
    return out


async def get_json(url: str, timeout: float = 10, auth: tuple[str, str] | None = None) -> dict:
    kwargs = {"auth_username": auth[0], "auth_password": auth[1]} if auth else {}
    response = await AsyncHTTPClient().fetch(
        url, request_timeout=timeout, connect_timeout=timeout, **kwargs
    )
    return json.loads(response.body)


async def post_json(url: str, body: object, timeout: float = 10) -> tuple[int, object]:
    """POST ``body`` as JSON; (status, the JSON answer, or its text, or None when empty)."""
    response = await AsyncHTTPClient().fetch(
        url,
        method="POST",
        body=json.dumps(body),
        headers={"Content-Type": "application/json"},
        request_timeout=timeout,
        connect_timeout=timeout,
        raise_error=False,
    )
    text = (response.body or b"").decode(errors="replace")
    try:
        return response.code, json.loads(text) if text else None
    except ValueError:
        return response.code, text


class Cluster:
    """What every cluster offers a test (see the module docstring)."""

    kind: str
    # The master's heartbeat interval and the agents' first status update retry, in seconds.
    heartbeat_interval: float = 15.0
    status_retry_interval: float = 10.0
    # Secure mode's principals and files (``secure=True``), or None.
    security: Security | None = None

    def __init__(self, agents: tuple[AgentSpec, ...]) -> None:
        self.agents = tuple(agents)

    @property
    def operator_auth(self) -> tuple[str, str] | None:
        """What the test reads the master with: the operator's credentials in secure mode."""
        return self.security.operator.auth if self.security is not None else None

    # ---- addresses
    @property
    def url(self) -> str:
        """What a scheduler is given: the master's URL, or ``zk://...`` with ZooKeeper."""
        raise NotImplementedError

    @property
    def master_urls(self) -> list[str]:
        """Every master's own HTTP URL (one unless the cluster runs on ZooKeeper)."""
        raise NotImplementedError

    @property
    def hostnames(self) -> list[str]:
        return [a.hostname for a in self.agents]

    @property
    def unreachable_after(self) -> float:
        return UNREACHABLE_AFTER[self.kind]

    async def leader_url(self, timeout: float = 3) -> str | None:
        """The HTTP URL of the master that leads now (None while none does)."""
        for url in self.master_urls:
            try:
                state = await get_json(f"{url}/master/state", timeout, self.operator_auth)
            except Exception:  # noqa: BLE001 - a dead or recovering master is not the leader
                continue
            own = str(state.get("pid", "")).endswith(f":{url.rsplit(':', 1)[1]}")
            if own and state.get("pid") == state.get("leader"):
                return url
        return None

    @property
    def master_url(self) -> str:
        """The first master's URL: the leader unless a test made it fail over."""
        return self.master_urls[0]

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` of ``master_url``: how pymesos and mesos-agent name a master."""
        return self.master_url.split("//", 1)[1]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])

    # ---- the master's view
    async def state(self, url: str | None = None) -> dict:
        return await get_json(f"{url or self.master_url}/master/state", auth=self.operator_auth)

    async def slaves(self) -> list[dict]:
        url = f"{self.master_url}/master/slaves"
        return (await get_json(url, auth=self.operator_auth))["slaves"]

    async def tasks(self, url: str | None = None) -> dict[str, dict]:
        """``tasks_by_id`` of the master's state."""
        return tasks_by_id(await self.state(url))

    async def task_states(self, url: str | None = None) -> dict[str, str]:
        return {tid: t["state"] for tid, t in (await self.tasks(url)).items()}

    async def agent_id(self, hostname: str) -> str:
        for a in await self.slaves():
            if a["hostname"] == hostname and a.get("active", True):
                return a["id"]
        raise KeyError(f"no active agent {hostname!r}")

    # ---- the operator
    async def operator(self, call: dict) -> tuple[int, object]:
        """An operator API call (``POST /api/v1``, JSON) to the master: (status, the JSON
        answer, or its text when it is not JSON)."""
        return await post_json(f"{self.master_url}/api/v1", call)

    async def schedule_maintenance(self, windows: list[dict]) -> tuple[int, object]:
        """``POST /master/maintenance/schedule`` (the operator's curl of docs/maintenance.md)."""
        return await post_json(
            f"{self.master_url}/master/maintenance/schedule", {"windows": windows}
        )

    def sandbox(self, hostname: str, agent_id: str, framework_id: str, task_id: str) -> str:
        """A command task's sandbox (its executor id is its task id on both masters)."""
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
        raise Unsupported(f"{self.kind}: no agent work directory")

    # ---- faults
    async def stop_agent(self, hostname: str) -> None:
        raise Unsupported(f"{type(self).__name__} cannot stop agent {hostname}")

    async def start_agent(self, hostname: str) -> None:
        raise Unsupported(f"{type(self).__name__} cannot start agent {hostname}")

    async def kill_agent(self, hostname: str) -> None:
        raise Unsupported(f"{type(self).__name__} cannot kill agent {hostname}")

    async def restart_agent(self, hostname: str) -> None:
        raise Unsupported(f"{type(self).__name__} cannot restart agent {hostname}")

    async def partition(self, hostname: str) -> None:
        raise Unsupported(f"{type(self).__name__} cannot partition agent {hostname}")

    async def heal(self, hostname: str) -> None:
        raise Unsupported(f"{type(self).__name__} cannot heal agent {hostname}")

    def kill_master(self, url: str) -> None:
        """SIGKILL the master at ``url``: it crashes, no goodbye to ZooKeeper or agents."""
        raise Unsupported(f"{type(self).__name__} has no master process to kill")

    async def kill_leader(self) -> str:
        """SIGKILL the leading master; returns the URL it had."""
        raise Unsupported(f"{type(self).__name__} has no standby master")

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


# ------------------------------------------------------------------ localmesos in this process


class InProcessLocalmesos(Cluster):
    kind = "localmesos"

    def __init__(self, cluster: LocalCluster, agents: tuple[AgentSpec, ...]) -> None:
        super().__init__(agents)
        self.cluster = cluster
        self.heartbeat_interval = cluster.heartbeat_interval
        self.status_retry_interval = cluster.status_retry_interval

    @property
    def url(self) -> str:
        return self.cluster.url

    @property
    def master_urls(self) -> list[str]:
        return [self.cluster.url]

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

    async def aclose(self) -> None:
        await self.cluster.stop()

    def close(self) -> None:
        raise RuntimeError("an in-process cluster stops on its event loop: await aclose()")


async def start_in_process(
    work_dir: Path, agents: tuple[AgentSpec, ...] = CONFORMANCE_AGENTS, **overrides
) -> InProcessLocalmesos:
    """localmesos on this event loop, with short heartbeats, retries and timeouts; it runs
    tasks as root (``allow_root_tasks``), as the conformance suites' real agents do."""
    settings = {
        "port": 0,
        "allow_root_tasks": True,
        "heartbeat_interval": 0.5,
        "status_retry_interval": 0.5,
        "allocation_interval": 0.2,
        "agent_unreachable_timeout": UNREACHABLE_AFTER["localmesos"],
        **overrides,
    }
    config = from_dict({"agent": [a.as_dict() for a in agents]}, "<test cluster>")
    cluster = LocalCluster(config, work_dir=str(work_dir), **settings)
    await cluster.start()
    return InProcessLocalmesos(cluster, agents)


# ------------------------------------------------------------------ localmesos as processes


@dataclass
class _Procs:
    masters: list[LocalMesos] = field(default_factory=list)
    agents: dict[str, LocalMesosAgent] = field(default_factory=dict)


class LocalmesosProcesses(Cluster):
    kind = "localmesos"

    def __init__(
        self,
        agents: tuple[AgentSpec, ...],
        zk: str | None,
        procs: _Procs,
        security: Security | None = None,
    ) -> None:
        super().__init__(agents)
        self.zk = zk
        self.procs = procs
        self.security = security

    @property
    def url(self) -> str:
        """The master, or ``zk://`` (with the masters' digest in secure mode)."""
        if self.zk and self.security is not None:
            return self.security.zk_url(self.zk)
        return self.zk or self.procs.masters[0].url

    @property
    def operator_auth(self) -> tuple[str, str] | None:
        return None  # localmesos authenticates no reader

    @property
    def master_urls(self) -> list[str]:
        return [m.url for m in self.procs.masters]

    @property
    def master_url(self) -> str:
        running = [m.url for m in self.procs.masters if m.running]
        return (running or self.master_urls)[0]

    def agent_work_dir(self, hostname: str) -> str:
        if hostname in self.procs.agents:
            return super().agent_work_dir(hostname)  # an agent process's own temporary one
        return str(self.procs.masters[0].workdir / "work")

    def _agent(self, hostname: str) -> LocalMesosAgent:
        try:
            return self.procs.agents[hostname]
        except KeyError:
            raise Unsupported(
                f"agent {hostname} runs inside the localmesos master: start the cluster with "
                "agent_processes=True to fault it"
            ) from None

    def agent_pid(self, hostname: str) -> int:
        return self._agent(hostname).proc.pid

    async def kill_agent(self, hostname: str) -> None:
        self._agent(hostname).kill()

    async def partition(self, hostname: str) -> None:
        os.kill(self.agent_pid(hostname), signal.SIGSTOP)

    async def heal(self, hostname: str) -> None:
        os.kill(self.agent_pid(hostname), signal.SIGCONT)

    def kill_master(self, url: str) -> None:
        next(m for m in self.procs.masters if m.url == url).kill()

    async def kill_leader(self) -> str:
        url = await self.leader_url()
        self.kill_master(url)
        return url

    def close(self) -> None:
        for agent in self.procs.agents.values():
            if agent.running:
                os.kill(agent.proc.pid, signal.SIGCONT)  # a partitioned agent cannot exit
            agent.cleanup()
        for master in self.procs.masters:
            master.cleanup()


def start_localmesos_processes(
    work_dir: Path,
    agents: tuple[AgentSpec, ...],
    *,
    zk: str | None = None,
    masters: int = 1,
    agent_processes: bool = False,
    master_args: tuple[str, ...] = (),
    secure: bool = False,
    allow_root_tasks: bool = True,
) -> LocalmesosProcesses:
    """The localmesos CLI: ``masters`` masters (more than one needs ``zk``), its agents inside
    the master, or with ``agent_processes`` (or ZooKeeper) one agent process each.

    ``secure``: what localmesos has of secure mode, the masters' ZooKeeper digest (it
    authenticates no framework, operator or agent: its ``/master/flags`` says so). With
    ``allow_root_tasks`` (the test clusters' default, as their real agents run root's tasks)
    the master gets ``--allow-root-tasks``."""
    if masters > 1 and not zk:
        raise ValueError("more than one master needs ZooKeeper")
    procs = _Procs()
    security = Security.create(work_dir / "security") if secure else None
    cluster = LocalmesosProcesses(agents, zk, procs, security)
    separate = agent_processes or zk is not None
    toml = "".join(a.toml() for a in agents)
    master_zk = security.zk_url(zk) if zk and security is not None else zk
    args = list(master_args) + (["--zk", master_zk] if zk else [])
    if allow_root_tasks:
        args.append("--allow-root-tasks")
    try:
        for i in range(masters):
            sandboxes = work_dir / f"master-{i}" / "work"  # its agents' (agent_work_dir)
            sandboxes.mkdir(parents=True)
            sandboxes.chmod(0o755)  # tasks run as the test users
            m = LocalMesos(
                work_dir / f"master-{i}",
                None if separate else toml,
                extra_args=args
                + ["--work-dir", str(sandboxes)]
                + (["--no-agents"] if separate else []),
            )
            procs.masters.append(m)
            m.start()
            run_blocking(m.wait_ready())
        if separate:
            for a in agents:
                agent = LocalMesosAgent(
                    work_dir / f"agent-{a.hostname}",
                    zk or procs.masters[0].url,
                    a.hostname,
                    a.resources,
                    a.attributes,
                    extra_args=a.agent_args(),
                )
                procs.agents[a.hostname] = agent
                agent.start()
            for agent in procs.agents.values():
                run_blocking(agent.wait_registered(procs.masters[0].url))
    except BaseException:
        cluster.close()
        raise
    return cluster


# ------------------------------------------------------------------ real Mesos


class RealMesos(Cluster):
    kind = "real"
    heartbeat_interval = 15.0  # DEFAULT_HEARTBEAT_INTERVAL, not a master flag
    status_retry_interval = 10.0  # STATUS_UPDATE_RETRY_INTERVAL_MIN

    def __init__(self, cluster: real_mesos.RealCluster, agents: tuple[AgentSpec, ...]) -> None:
        super().__init__(agents)
        self.cluster = cluster
        self.security = cluster.security

    def agent_url(self, hostname: str) -> str:
        """The agent's own HTTP address (``/state``, ``/files``)."""
        return f"http://127.0.0.1:{self.cluster.agent(hostname).port}"

    @property
    def url(self) -> str:
        return self.cluster.url

    @property
    def master_urls(self) -> list[str]:
        return [m.url for m in self.cluster.masters]

    @property
    def master_url(self) -> str:
        running = [m.url for m in self.cluster.masters if m.running]
        return (running or self.master_urls)[0]

    def agent(self, hostname: str) -> real_mesos.RealAgent:
        return self.cluster.agent(hostname)

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

    def kill_master(self, url: str) -> None:
        next(m for m in self.cluster.masters if m.url == url).kill()

    async def kill_leader(self) -> str:
        url = await self.leader_url()
        self.kill_master(url)
        return url

    def close(self) -> None:
        for a in self.cluster.agents:
            a.send(signal.SIGCONT)  # a partitioned agent cannot act on SIGTERM
        self.cluster.stop()


def start_real(
    work_dir: Path,
    agents: tuple[AgentSpec, ...],
    *,
    zk: str | None = None,
    masters: int = 1,
    docker: bool = False,
    master_flags: tuple[str, ...] = (),
    agent_flags: tuple[str, ...] = (),
    secure: bool = False,
) -> RealMesos:
    """Real Mesos: masters (MASTER_TEST_FLAGS) and one ``mesos-agent`` per agent; ``secure``:
    secure mode (``mesosspawner.testing.mesos_security``)."""
    cluster = real_mesos.start_cluster(
        work_dir,
        tuple(a.real_dict() for a in agents),
        zk=zk,
        masters=masters,
        docker=docker,
        master_extra=master_flags,
        agent_extra=agent_flags,
        secure=secure,
    )
    return RealMesos(cluster, agents)


def start_cluster(
    kind: str,
    work_dir: Path,
    agents: tuple[AgentSpec, ...] | None = None,
    *,
    zk: str | None = None,
    masters: int = 1,
    agent_processes: bool = False,
    docker: bool = False,
    localmesos_args: tuple[str, ...] = (),
    allow_root_tasks: bool = True,
    master_flags: tuple[str, ...] = (),
    agent_flags: tuple[str, ...] = (),
    secure: bool = False,
) -> Cluster:
    """A cluster of processes of ``kind`` (``localmesos`` or ``real``), started and ready.

    ``localmesos_args`` go to a localmesos master, ``master_flags``/``agent_flags`` to real
    Mesos's (each kind ignores the other's); ``docker`` gives real agents the Docker
    containerizer (localmesos agents always have it). ``secure``: secure mode, its principals
    in ``cluster.security``: on real Mesos authentication, ACLs and the masters' ZooKeeper
    digest; on localmesos only the digest (it authenticates nothing else).
    ``allow_root_tasks=False``: a localmesos master refuses root's tasks, as it does when
    started without ``--allow-root-tasks``.
    """
    agents = lab_agents() if agents is None else tuple(agents)
    if secure and zk:
        open_parents(zk)
    if kind == "real":
        return start_real(
            work_dir,
            agents,
            zk=zk,
            masters=masters,
            docker=docker,
            master_flags=master_flags,
            agent_flags=agent_flags,
            secure=secure,
        )
    if kind == "localmesos":
        return start_localmesos_processes(
            work_dir,
            agents,
            zk=zk,
            masters=masters,
            agent_processes=agent_processes,
            master_args=localmesos_args,
            secure=secure,
            allow_root_tasks=allow_root_tasks,
        )
    raise ValueError(f"cluster kind {kind!r}: expected one of {KINDS}")


# ------------------------------------------------------------------ pytest fixtures


def require_real_mesos() -> Path:
    """The real Mesos install; skips without one, or fails under ``CI=true``: the bundle is
    there in CI, so a skip would hide a broken install step."""
    reason = real_mesos.why_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return real_mesos.mesos_home()


@pytest.fixture(scope="session")
def real_mesos_home() -> Path:
    """The real Mesos 1.11.0 install (``scripts/install-mesos.sh``); the tier skips without one
    (fails in CI)."""
    return require_real_mesos()


@pytest.fixture(scope="module", params=KINDS)
def mesos_kind(request: pytest.FixtureRequest) -> str:
    """``localmesos`` or ``real``: a test that uses it runs on both masters. Module-scoped, so
    pytest runs a module's tests kind by kind and a module's shared cluster starts once each."""
    if request.param == "real":
        require_real_mesos()
    return request.param


class Clusters:
    """Starts clusters and stops them all at the end of its fixture's scope. Work directories
    are world-traversable (pytest's are not): tasks run as the test users."""

    def __init__(self) -> None:
        self.started: list[Cluster] = []
        self.dirs: list[str] = []
        self.blocks: list[int] = []

    def _work_dir(self, kind: str) -> Path:
        work = Path(tempfile.mkdtemp(prefix=f"cluster-{kind}-"))
        work.chmod(0o755)
        self.dirs.append(str(work))
        return work

    def __call__(self, kind: str = "localmesos", agents=None, **kwargs) -> Cluster:
        """A cluster of processes: ``start_cluster``'s arguments; ``lab_agents()`` on ports of
        their own by default."""
        if kind == "real":
            require_real_mesos()
        if agents is None:
            base = port_block()
            self.blocks.append(base)
            agents = lab_agents(base)
        cluster = start_cluster(kind, self._work_dir(kind), agents, **kwargs)
        self.started.append(cluster)
        return cluster

    async def in_process(self, agents=CONFORMANCE_AGENTS, **settings) -> InProcessLocalmesos:
        """localmesos on the test's own event loop (function scope only), where a partition
        is the master losing the agent's link: what ``partition`` shows of real Mesos."""
        cluster = await start_in_process(self._work_dir("in-process"), tuple(agents), **settings)
        self.started.append(cluster)
        return cluster

    async def faultable(self, kind: str, agents, **kwargs) -> Cluster:
        """A cluster whose agents ``partition``/``heal`` and ``kill_agent`` the way the master
        sees it: real Mesos's processes (SIGSTOP, SIGKILL), or in-process localmesos (a
        localmesos agent process that is SIGSTOPped keeps its link open: its master never
        notices). ``kwargs`` go to the real cluster."""
        if kind == "real":
            return self("real", agents, **kwargs)
        return await self.in_process(agents, agent_unreachable_timeout=2.0)

    def _remove_dirs(self) -> None:
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        for base in self.blocks:
            release_port_block(base)

    async def aclose(self) -> None:
        for cluster in reversed(self.started):
            await cluster.aclose()
        self._remove_dirs()

    def close(self) -> None:
        for cluster in reversed(self.started):
            cluster.close()
        self._remove_dirs()


@pytest.fixture
async def clusters() -> AsyncIterator[Clusters]:
    """``clusters(kind, agents=None, zk=..., masters=..., agent_processes=..., docker=...,
    localmesos_args=..., allow_root_tasks=..., master_flags=..., agent_flags=..., secure=...)``,
    ``await clusters.in_process(...)``, ``await clusters.faultable(kind, agents)``: clusters this
    test owns (it may fault them); all stopped after the test."""
    made = Clusters()
    yield made
    await made.aclose()


@pytest.fixture(scope="module")
def module_clusters() -> Iterator[Clusters]:
    """Like ``clusters``, for clusters a module's tests share (never faulted)."""
    made = Clusters()
    yield made
    made.close()
