"""``LocalCluster``: one master HTTP server plus its in-process agents — the object tests drive.

Without ZooKeeper the process always leads and its agents talk to the master directly. With
``zk``, the master contends for leadership (zk.py) and answers 307 until it leads; its agents
then follow whichever master leads over the agent protocol of remote_agent.py, exactly like
separate agent processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile

from tornado import httpserver, web

from .agent import DirectAgentLink, DirectMasterLink, LocalAgent
from .authorization import TaskUsers
from .config import AgentConfig, ClusterConfig, default_cluster
from .handlers import routes
from .master import Master
from .remote_agent import AgentSession, agent_routes

log = logging.getLogger("mesosspawner.localmesos.cluster")


class LocalCluster:
    def __init__(
        self,
        config: ClusterConfig | None = None,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        zk: str | None = None,
        heartbeat_interval: float = 15.0,
        offer_timeout: float | None = None,
        agent_unreachable_timeout: float = 75.0,
        status_retry_interval: float = 10.0,
        allocation_interval: float = 1.0,
        agent_reregister_timeout: float = 600.0,
        executor_registration_timeout: float = 60.0,
        zk_session_timeout: float = 10.0,
        work_dir: str | None = None,
        with_agents: bool = True,
        allow_root_tasks: bool = False,
        task_users: tuple[str, ...] = (),
    ) -> None:
        self.config = config or default_cluster()
        self.task_users = TaskUsers(allow_root_tasks, tuple(task_users))
        self.port = self.config.port if port is None else port
        self.host = host
        self.zk = zk if zk is not None else self.config.zk
        self.heartbeat_interval = heartbeat_interval
        self.offer_timeout = offer_timeout
        self.agent_unreachable_timeout = agent_unreachable_timeout
        self.status_retry_interval = status_retry_interval
        self.allocation_interval = allocation_interval
        self.agent_reregister_timeout = agent_reregister_timeout
        self.executor_registration_timeout = executor_registration_timeout
        self.zk_session_timeout = zk_session_timeout
        self._own_work_dir = work_dir is None
        self.work_dir = work_dir or tempfile.mkdtemp(prefix="localmesos-")
        if self._own_work_dir:
            # Tasks may run as other users (command.user): they must reach their sandboxes.
            os.chmod(self.work_dir, 0o755)
        self.with_agents = with_agents
        self.master: Master | None = None
        self.agents: dict[str, LocalAgent] = {}
        self._sessions: dict[str, AgentSession] = {}
        self._server: httpserver.HTTPServer | None = None
        self._contender = None
        self._leader: tuple[str, int] | None = None
        self.recovering = False  # elected, reading the registry: answer 503 meanwhile
        self._registry = None
        self._recovery: asyncio.Task | None = None
        self._agent_port = 5051

    # ---------------------------------------------------------------- Leadership protocol

    def leader_address(self) -> tuple[str, int] | None:
        return self._leader

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def flags(self) -> dict[str, str]:
        """``/master/flags``: what this master runs with, under real Mesos's flag names and in
        its form (strings; durations as ``15secs``). It authenticates nothing and has no ACLs:
        the ``authenticate_*`` flags are ``false`` and there is no ``acls``, as on a real master
        started without them."""
        flags = {
            "ip": self.host,
            "port": str(self.port),
            "hostname": self.host,
            "work_dir": self.work_dir,
            "authenticate_agents": "false",
            "authenticate_frameworks": "false",
            "authenticate_http_frameworks": "false",
            "authenticate_http_readonly": "false",
            "authenticate_http_readwrite": "false",
            "authorizers": "local",
            "agent_reregister_timeout": _duration(self.agent_reregister_timeout),
            "allocation_interval": _duration(self.allocation_interval),
            "registry": "replicated_log" if self.zk else "in_memory",
        }
        if self.zk:
            # As a real master shows an inline --zk: as given, digest included.
            flags["zk"] = self.zk
            flags["zk_session_timeout"] = _duration(self.zk_session_timeout)
        return flags

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        app = web.Application(routes(self) + agent_routes(self))
        self._server = httpserver.HTTPServer(app, idle_connection_timeout=3600)
        self._server.add_sockets([sock])
        if self.zk:
            from .zk import MasterContender

            self._contender = MasterContender(
                self.zk, self._new_master().master_info(), self.zk_session_timeout
            )
            self._contender.on_change = self._leadership_changed
            await self._contender.start()
        else:
            self._become_leader()
        if self.with_agents:
            for agent_cfg in self.config.agents:
                await self.start_agent(agent_cfg.hostname)

    def _new_master(self) -> Master:
        if not hasattr(self, "_candidate"):
            self._candidate = Master(
                hostname=self.host,
                ip=self.host if _is_ipv4(self.host) else "127.0.0.1",
                port=self.port,
                heartbeat_interval=self.heartbeat_interval,
                offer_timeout=self.offer_timeout,
                agent_unreachable_timeout=self.agent_unreachable_timeout,
                allocation_interval=self.allocation_interval,
                agent_reregister_timeout=self.agent_reregister_timeout,
                task_users=self.task_users,
            )
        return self._candidate

    def _become_leader(self, registry_state: dict[str, str] | None = None) -> None:
        if self.master is not None:
            return
        master = self._new_master()
        master.registry = self._registry
        master.start(registry_state)
        self.master = master
        self.recovering = False
        self._leader = (master.hostname, master.port)
        log.info("localmesos master %s leads at %s", master.id, self.url)

    async def _recover_and_lead(self) -> None:
        """Elected: read the registry (agents the previous leader admitted), then serve."""
        from .zk import ZkRegistry

        assert self._contender is not None
        self._registry = ZkRegistry(self._contender.client, self._contender.path)
        try:
            state = await asyncio.to_thread(self._registry.load)
        except Exception:  # noqa: BLE001 - lead without history rather than never
            log.warning("could not read the agent registry", exc_info=True)
            state = {}
        self._become_leader(state)

    def _leadership_changed(self, leader: dict | None, am_leader: bool) -> None:
        if am_leader:
            if self.master is None and not self.recovering:
                self.recovering = True
                self._recovery = asyncio.get_running_loop().create_task(self._recover_and_lead())
            return
        if leader is None:
            self._leader = None
        else:
            addr = leader.get("address") or {}
            self._leader = (addr.get("hostname") or addr.get("ip"), int(addr.get("port")))

    async def stop(self) -> None:
        for hostname in list(self.agents):
            await self.stop_agent(hostname)
        if self._recovery is not None:
            self._recovery.cancel()
        if self._registry is not None:
            await asyncio.to_thread(self._registry.close)
        if self._contender is not None:
            await self._contender.stop()
        if self.master is not None:
            self.master.stop()
        if self._server is not None:
            self._server.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.close_all_connections(), 2)
        if self._own_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    # ---------------------------------------------------------------- agents

    def _agent_config(self, hostname: str) -> AgentConfig:
        for a in self.config.agents:
            if a.hostname == hostname:
                return a
        raise KeyError(f"no agent {hostname!r} in the cluster config")

    async def start_agent(self, hostname: str) -> LocalAgent:
        """(Re)start an agent from the cluster config; it registers as a new agent."""
        if hostname in self.agents:
            raise RuntimeError(f"agent {hostname!r} is already running")
        cfg = self._agent_config(hostname)
        agent = LocalAgent(
            cfg.hostname,
            cfg.resources,
            cfg.attributes,
            self.work_dir,
            port=self._agent_port,
            status_retry_interval=self.status_retry_interval,
            executor_registration_timeout=self.executor_registration_timeout,
            containerization=cfg.containerization,
        )
        self._agent_port += 1
        self.agents[hostname] = agent
        if self.zk:
            session = AgentSession(agent, self.zk)
            self._sessions[hostname] = session
            session.start()
        else:
            assert self.master is not None
            agent_id = self.master.register_agent(
                cfg.hostname,
                cfg.resources,
                cfg.attributes,
                DirectAgentLink(agent),
                port=agent.port,
                ip=self.master.ip,
            )
            agent.registered(agent_id, DirectMasterLink(self.master))
        return agent

    async def stop_agent(self, hostname: str) -> None:
        """Stop an agent as if its machine went down: tasks die silently; the master notices."""
        agent = self.agents.pop(hostname)
        session = self._sessions.pop(hostname, None)
        if session is not None:
            await session.stop()
        await agent.stop()
        if self.master is not None and agent.agent_id and session is None:
            self.master.agent_disconnected(agent.agent_id)

    def disconnect_agent(self, hostname: str) -> None:
        """The agent's connection to the master breaks (its process crashed): the master
        notices at once; tasks keep running (those of frameworks that do not checkpoint are
        lost). ``reconnect_agent(hostname, restarted=True)`` brings it back."""
        agent = self._in_process(hostname)
        agent.disconnected()
        self.master.agent_disconnected(agent.agent_id)

    def partition_agent(self, hostname: str) -> None:
        """The agent stops answering but its connection looks fine (a partition, a frozen
        process): the master only notices when the agent misses its pings, and what it sends
        meanwhile waits. ``reconnect_agent(hostname)`` heals it."""
        agent = self._in_process(hostname)
        agent.disconnected()
        master_agent = self.master.agents.get(agent.agent_id)
        if master_agent is not None:
            master_agent.link = HeldAgentLink(master_agent.link)
        self.master.agent_unresponsive(agent.agent_id)

    def reconnect_agent(self, hostname: str, *, restarted: bool = False) -> None:
        """Re-register the agent with the same id and its tasks, as a real agent does after a
        restart with recovery (``restarted``: the tasks of frameworks that do not checkpoint
        did not survive it) or when a partition heals."""
        agent = self._in_process(hostname)
        cfg = self._agent_config(hostname)
        if restarted:
            agent.forget_uncheckpointed()
        master_agent = self.master.agents.get(agent.agent_id)
        held = master_agent.link if master_agent is not None else None
        agent_id = self.master.register_agent(
            cfg.hostname,
            cfg.resources,
            cfg.attributes,
            DirectAgentLink(agent),
            port=agent.port,
            agent_id=agent.agent_id,
            tasks=agent.reregistration_tasks(),
            frameworks=list(agent.frameworks.values()),
            ip=self.master.ip,
        )
        agent.registered(agent_id, DirectMasterLink(self.master))
        if isinstance(held, HeldAgentLink):
            held.release()

    def _in_process(self, hostname: str) -> LocalAgent:
        agent = self.agents[hostname]
        if self.zk or self.master is None or not agent.agent_id:
            raise RuntimeError(f"agent {hostname!r} is not an in-process agent without ZooKeeper")
        return agent


class HeldAgentLink:
    """What the master sends a partitioned agent: kept until the partition heals, then
    delivered in order (a frozen agent reads its socket when it wakes)."""

    def __init__(self, link) -> None:
        self.link = link
        self.held: list[tuple[str, tuple]] = []

    def __getattr__(self, name: str):
        if name not in ("launch", "kill", "acknowledge", "shutdown_framework"):
            raise AttributeError(name)
        return lambda *args: self.held.append((name, args))

    def release(self) -> None:
        for name, args in self.held:
            getattr(self.link, name)(*args)
        self.held.clear()


def _duration(seconds: float) -> str:
    """Seconds as Mesos prints a Duration flag: ``200ms``, ``15secs``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}secs"


def _is_ipv4(host: str) -> bool:
    try:
        socket.inet_aton(host)
    except OSError:
        return False
    return host.count(".") == 3
