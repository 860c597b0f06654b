"""The framework's view of the cluster: agents' totals from the master, their free resources
from offers, and where this framework's tasks run (a restarted hub's survivors included).

``ClusterView`` is a part of ``MesosFramework`` (its mixin): it reads the framework's
``agents``, ``tasks``, ``agent_totals``, ``config`` and ``client``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from . import placement as plc
from .mesos import state
from .mesos.client import MesosError
from .mesos.resources import UNRESERVED, Resource, merge
from .tasks import TaskRecord


@dataclass
class AgentView:
    """The framework's view of one agent, learned from offers and its own tasks."""

    agent_id: str
    hostname: str
    attributes: tuple = ()
    offered: dict[str, tuple[Resource, ...]] = field(default_factory=dict)  # by allocation role
    seen: float = 0.0

    def record_offer(self, role: str, resources: tuple[Resource, ...]) -> None:
        """The agent's latest offer for ``role``. Under DRF the master offers an agent's
        unreserved resources to whichever subscribed role comes first, one role at a time, so
        a newer offer's unreserved resources supersede those an older offer gave another role
        (kept, they would count the same GPUs twice)."""
        for other, kept in list(self.offered.items()):
            if other != role:
                self.offered[other] = tuple(r for r in kept if r.role != UNRESERVED)
        self.offered[role] = resources


class ClusterView:
    """Capacity answers and the master-state reads behind them (mixed into MesosFramework)."""

    async def refresh_capacity(self, max_age: float = 10.0, timeout: float = 2.0) -> None:
        """Make the cluster view at most ``max_age`` seconds old: revive and wait for offers.

        Offers only show free resources, so the view is cleared first: an agent that sends no
        offer is full, not unchanged.
        """
        await self.ensure_started()
        try:
            await asyncio.wait_for(self.subscribed_once.wait(), timeout)
        except TimeoutError:
            return
        if self._cluster_fetch is not None and not self._cluster_fetch.done():
            await asyncio.wait([self._cluster_fetch], timeout=timeout)
        if self._totals_at is None or time.monotonic() - self._totals_at >= max_age:
            await self.refresh_agents(timeout)
        newest = max((a.seen for a in self.agents.values()), default=0.0)
        if self.agents and time.monotonic() - newest < max_age:
            return
        for agent in self.agents.values():
            agent.offered.clear()
        self._offers_seen.clear()
        await self._revive(None)
        try:
            await asyncio.wait_for(self._offers_seen.wait(), timeout)
            await asyncio.sleep(0.2)  # offers for other roles of the same round
        except TimeoutError:
            pass

    def gpu_agents(self) -> set[str]:
        """Agents known to have GPUs, even while all of them are in use (absent from offers)."""
        return {a.agent_id for a in self.capacity() if any(r.name == "gpus" for r in a.total)}

    @property
    def totals_known(self) -> bool:
        """Whether agents' totals came from the master (else they are guessed from offers)."""
        return bool(self.agent_totals)

    def capacity(self) -> list[plc.AgentCapacity]:
        """Each known agent's total and free (offered to us) resources. Totals are the master's
        when known, else what was offered plus what our tasks use."""
        used: dict[str, list[Resource]] = {}
        for t in self.tasks.values():
            if t.active and t.agent_id:
                used.setdefault(t.agent_id, []).extend(t.resources)
        out = []
        for agent_id in [*self.agents, *(a for a in self.agent_totals if a not in self.agents)]:
            view = self.agents.get(agent_id)
            known = self.agent_totals.get(agent_id)
            free: tuple[Resource, ...] = ()
            if view is not None:
                free = tuple(merge(r for rs in view.offered.values() for r in rs))
            if known is not None:
                out.append(
                    plc.AgentCapacity(agent_id, known.hostname, known.total, free, known.attributes)
                )
            else:
                total = tuple(merge([*free, *used.get(agent_id, [])]))
                out.append(plc.AgentCapacity(agent_id, view.hostname, total, free, view.attributes))
        return out

    # ------------------------------------------------------------------ the master's state

    async def refresh_agents(self, timeout: float = 3.0) -> bool:
        """Learn every agent's total resources from the master; True if the view is fresh.

        Real Mesos serves ``/master/slaves``; localmesos only ``/master/state`` (same shape).
        """
        try:
            data = await self._get_master_json("/master/slaves", timeout)
            if data is None:
                data = await self._get_master_json("/master/state", timeout)
            agents = state.agents_from_master(data or {})
        except (MesosError, OSError, ValueError) as e:  # ValueError: bad JSON or resources
            self.log.warning("Could not read the agents' total resources from the master: %s", e)
            return False
        self.agent_totals = {a.agent_id: a for a in agents}
        self._totals_at = time.monotonic()
        return True

    async def _relearn_tasks(self, timeout: float = 10.0) -> None:
        """Resources and agent of every task still running after a hub restart: reconciliation
        answers with states only, so capacity and placement would otherwise ignore them."""
        framework_id = self.client.framework_id
        if not framework_id:
            return
        path = f"/master/state?framework_id={framework_id}"
        try:
            seen = state.tasks_from_master(
                await self._get_master_json(path, timeout) or {}, framework_id
            )
        except (MesosError, OSError, ValueError) as e:
            self.log.warning("Could not read this framework's tasks from the master: %s", e)
            return
        for task in seen:
            record = self.tasks.get(task.task_id)
            if record is None:
                # Reconciliation reports it too; until then it is nobody's (an orphan candidate).
                record = self.tasks[task.task_id] = TaskRecord(
                    task.task_id, state=task.state, claimed=False
                )
                if record.active:
                    self._schedule_orphan_check()
            if not record.resources:
                record.resources = task.resources
            if not record.agent_id and task.agent_id:
                record.agent_id = task.agent_id
            if record.active and record.agent_id and task.task_id not in self._placed:
                self._survivors.add(task.task_id)

    async def _learn_cluster(self) -> None:
        await self.refresh_agents()
        await self._relearn_tasks()

    def _master_base(self) -> str | None:
        """The master's HTTP base URL: the configured one when it is a single URL (it may carry
        a path behind a proxy; redirects lead to the leader), else the leader from SUBSCRIBED."""
        master = self.config.master.strip()
        if master.startswith(("http://", "https://")) and "," not in master:
            base = master.rstrip("/").removesuffix("/api/v1/scheduler")
            return base.removesuffix("/master")
        info = self.client.master_info or {}
        address = info.get("address") or {}
        host = address.get("ip") or address.get("hostname") or info.get("hostname")
        port = address.get("port") or info.get("port")
        if not host or not port:
            return None
        https = master.startswith("https://") or (
            master.startswith("zk://") and self.config.ca_file
        )
        return f"{'https' if https else 'http'}://{host}:{port}"

    async def _get_master_json(self, path: str, timeout: float) -> Any:
        """GET a master endpoint (with our credentials) as JSON; None if it is not served."""
        base = self._master_base()
        if base is None:
            raise MesosError("the leading master's address is not known yet")
        headers = {"Accept": "application/json"}
        if self.config.principal and self.config.secret is not None:
            pair = f"{self.config.principal}:{self.config.secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        request = HTTPRequest(
            base + path,
            headers=headers,
            connect_timeout=timeout,
            request_timeout=timeout,
            ca_certs=self.config.ca_file,
            follow_redirects=True,
        )
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
        if response.code == 404:
            return None
        if response.code != 200:
            why = response.error or f"HTTP {response.code}"
            raise MesosError(f"GET {base}{path}: {why}", code=response.code)
        return json.loads(response.body)

    def _agent_identity(
        self, agent_id: str, hostname: str | None = None
    ) -> tuple[str | None, tuple]:
        """(hostname, attributes) of an agent, from offers or the master's agent list."""
        view = self.agents.get(agent_id)
        known = self.agent_totals.get(agent_id)
        if view is not None:
            return hostname or view.hostname, view.attributes
        if known is not None:
            return hostname or known.hostname, known.attributes
        return hostname, ()

    def _placed_tasks(self) -> list[plc.Placed]:
        """Where this framework's tasks run, a restarted hub's survivors included."""
        out = list(self._placed.values())
        for task_id in sorted(self._survivors):
            record = self.tasks.get(task_id)
            if record is None or not record.active or not record.agent_id:
                continue
            if task_id in self._placed:
                continue
            hostname, attributes = self._agent_identity(record.agent_id, record.hostname)
            if hostname:
                out.append(plc.Placed(record.agent_id, hostname, attributes))
        return out
