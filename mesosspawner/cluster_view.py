"""The framework's view of the cluster: agents' totals from the master, their free resources
from offers, and where this framework's tasks run (a restarted hub's survivors included).

``ClusterView`` is owned by ``MesosFramework`` and owns all of that state; it is given the
framework's task table to read and a function that reads the master (``SchedulerClient.get_json``,
so the master's address, credentials, TLS and leader are the client's).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import placement as plc
from .mesos import state
from .mesos.client import MesosError
from .mesos.events import Offer, Unavailability
from .mesos.resources import UNRESERVED, Resource, merge, subtract
from .tasks import TaskRecord

ReadMaster = Callable[[str, float], Awaitable[Any]]


@dataclass
class AgentView:
    """The framework's view of one agent, learned from offers and its own tasks."""

    agent_id: str
    hostname: str
    attributes: tuple = ()
    offered: dict[str, tuple[Resource, ...]] = field(default_factory=dict)  # by allocation role
    offer_ids: dict[str, str] = field(default_factory=dict)  # the offer behind each ``offered``
    seen: float = 0.0
    # When its machine goes down for maintenance, as its latest offer said (None: not planned).
    unavailability: Unavailability | None = None

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
    """Capacity answers, placement's view of where tasks run, and the master reads behind them."""

    def __init__(
        self,
        tasks: Mapping[str, TaskRecord],
        read_master: ReadMaster,
        log: logging.Logger,
    ) -> None:
        self._tasks = tasks  # the framework's: read, never written
        self._read_master = read_master
        self.log = log
        self.agents: dict[str, AgentView] = {}
        # Every agent's total resources as the master knows them (other frameworks' use
        # included), so "can never fit" is not judged from what happens to be offered to us.
        self.totals: dict[str, state.AgentSeen] = {}
        self._totals_at: float | None = None
        self._placed: dict[str, plc.Placed] = {}
        # Active tasks this framework object did not launch (a restarted hub's survivors):
        # placement must count them for UNIQUE/MAX_PER/spread like its own launches.
        self._survivors: set[str] = set()
        self._offers_seen = asyncio.Event()
        # Roles' quota limits and use (Mesos 1.9+ UPDATE_QUOTA), by role; only roles with limits.
        self.quotas: dict[str, state.RoleQuota] = {}

    # ------------------------------------------------------------------ what offers say

    def record_offers(self, offers: Sequence[Offer]) -> None:
        now = time.monotonic()
        for offer in offers:
            view = self.agents.get(offer.agent_id)
            if view is None:
                view = self.agents[offer.agent_id] = AgentView(offer.agent_id, offer.hostname)
            view.attributes = offer.attributes
            view.record_offer(offer.allocation_role or "*", offer.resources)
            view.offer_ids[offer.allocation_role or "*"] = offer.id
            view.unavailability = offer.unavailability
            view.seen = now
        self._offers_seen.set()

    def rescinded(self, offer_id: str) -> None:
        """The master took ``offer_id`` back (offer timeout, agent drained or gone, maintenance
        scheduled): what it held is not free for us any more."""
        for view in self.agents.values():
            for role, held in list(view.offer_ids.items()):
                if held == offer_id:
                    del view.offer_ids[role]
                    view.offered.pop(role, None)

    def launched(self, task_id: str, placement: plc.Placement) -> None:
        """``task_id`` was launched with ``placement``: where it runs, and what it took."""
        self._placed[task_id] = plc.Placed(
            placement.agent_id, placement.hostname, self._identity(placement.agent_id)[1]
        )
        view = self.agents.get(placement.agent_id)
        role = placement.allocation_role or "*"
        if view is not None and role in view.offered:
            try:
                view.offered[role] = tuple(subtract(view.offered[role], placement.resources))
            except ValueError:
                pass

    def released(self, task_id: str) -> None:
        """``task_id`` no longer holds its agent (ended, or requeued)."""
        self._placed.pop(task_id, None)

    def noted(self, record: TaskRecord) -> None:
        """Keep track of ``record``'s task if it runs without having been launched here."""
        if record.active and record.agent_id and record.task_id not in self._placed:
            self._survivors.add(record.task_id)
        elif not record.active:
            self._survivors.discard(record.task_id)

    # ------------------------------------------------------------------ answers

    def placed_tasks(self) -> list[plc.Placed]:
        """Where this framework's tasks run, a restarted hub's survivors included."""
        out = list(self._placed.values())
        for task_id in sorted(self._survivors):
            record = self._tasks.get(task_id)
            if record is None or not record.active or not record.agent_id:
                continue
            if task_id in self._placed:
                continue
            hostname, attributes = self._identity(record.agent_id, record.hostname)
            if hostname:
                out.append(plc.Placed(record.agent_id, hostname, attributes))
        return out

    def gpu_agents(self) -> set[str]:
        """Agents known to have GPUs, even while all of them are in use (absent from offers)."""
        return {a.agent_id for a in self.capacity() if any(r.name == "gpus" for r in a.total)}

    def gpu_totals(self) -> tuple[int | None, int | None]:
        """(the cluster's GPUs, GPUs free in offers); None where nothing is known yet."""
        agents = self.capacity()
        if not agents:
            return None, None
        total = int(sum(r.scalar or 0 for a in agents for r in a.total if r.name == "gpus"))
        return total, plc.free_gpus(agents)

    @property
    def totals_known(self) -> bool:
        """Whether agents' totals came from the master (else they are guessed from offers)."""
        return bool(self.totals)

    def going_down(self, now: float, horizon: float) -> dict[str, tuple[str, Unavailability]]:
        """Agents whose machine goes down for maintenance within ``horizon`` seconds of
        ``now`` (as their latest offers said): agent id -> (hostname, unavailability)."""
        return {
            a.agent_id: (a.hostname, a.unavailability)
            for a in self.agents.values()
            if a.unavailability is not None and plc.going_down(a.unavailability, now, horizon)
        }

    def capacity(self, exclude: Collection[str] = ()) -> list[plc.AgentCapacity]:
        """Each known agent's total and free (offered to us) resources. Totals are the master's
        when known, else what was offered plus what our tasks use. Agents in ``exclude`` (going
        down for maintenance) have nothing free for a new notebook."""
        used: dict[str, list[Resource]] = {}
        for t in self._tasks.values():
            if t.active and t.agent_id:
                used.setdefault(t.agent_id, []).extend(t.resources)
        out = []
        for agent_id in [*self.agents, *(a for a in self.totals if a not in self.agents)]:
            view = self.agents.get(agent_id)
            known = self.totals.get(agent_id)
            free: tuple[Resource, ...] = ()
            if view is not None and agent_id not in exclude:
                free = tuple(merge(r for rs in view.offered.values() for r in rs))
            if known is not None:
                out.append(
                    plc.AgentCapacity(agent_id, known.hostname, known.total, free, known.attributes)
                )
            else:
                total = tuple(merge([*free, *used.get(agent_id, [])]))
                out.append(plc.AgentCapacity(agent_id, view.hostname, total, free, view.attributes))
        return out

    def _identity(self, agent_id: str, hostname: str | None = None) -> tuple[str | None, tuple]:
        """(hostname, attributes) of an agent, from offers or the master's agent list."""
        view = self.agents.get(agent_id)
        known = self.totals.get(agent_id)
        if view is not None:
            return hostname or view.hostname, view.attributes
        if known is not None:
            return hostname or known.hostname, known.attributes
        return hostname, ()

    # ------------------------------------------------------------------ keeping it fresh

    async def refresh(
        self, revive: Callable[[], Awaitable[None]], max_age: float = 10.0, timeout: float = 2.0
    ) -> None:
        """Make the view at most ``max_age`` seconds old: re-read the totals, and ``revive``
        offers and wait for them.

        Offers only show free resources, so the offered view is cleared first: an agent that
        sends no offer is full, not unchanged.
        """
        if self._totals_at is None or time.monotonic() - self._totals_at >= max_age:
            await self.refresh_totals(timeout)
        newest = max((a.seen for a in self.agents.values()), default=0.0)
        if self.agents and time.monotonic() - newest < max_age:
            return
        for agent in self.agents.values():
            agent.offered.clear()
        self._offers_seen.clear()
        await revive()
        try:
            await asyncio.wait_for(self._offers_seen.wait(), timeout)
            await asyncio.sleep(0.2)  # offers for other roles of the same round
        except TimeoutError:
            pass

    async def refresh_totals(self, timeout: float = 3.0) -> bool:
        """Learn every agent's total resources from the master; True if the view is fresh.

        Real Mesos serves ``/master/slaves``; localmesos only ``/master/state`` (same shape).
        """
        try:
            data = await self._read_master("/master/slaves", timeout)
            if data is None:
                data = await self._read_master("/master/state", timeout)
            agents = state.agents_from_master(data or {})
        except (MesosError, OSError, ValueError) as e:  # ValueError: bad JSON or resources
            self.log.warning("Could not read the agents' total resources from the master: %s", e)
            return False
        self.totals = {a.agent_id: a for a in agents}
        self._totals_at = time.monotonic()
        await self.refresh_quotas(timeout)
        return True

    async def refresh_quotas(self, timeout: float = 3.0) -> None:
        """Learn roles' quota limits (``GET /master/quota``) and, for roles with limits, what
        they consume now (``GET /master/roles``). A master older than 1.9 has no limits."""
        try:
            limits = state.quotas_from_master(
                await self._read_master("/master/quota", timeout) or {"configs": []}
            )
            consumed = {}
            if limits:
                roles = await self._read_master("/master/roles", timeout) or {"roles": []}
                consumed = state.quota_consumed_from_roles(roles)
        except (MesosError, OSError, ValueError) as e:
            self.log.warning("Could not read the roles' quotas from the master: %s", e)
            return
        self.quotas = {
            role: dataclasses.replace(q, consumed=consumed.get(role, ()))
            for role, q in limits.items()
        }

    async def tasks_of(
        self, framework_id: str, timeout: float = 10.0
    ) -> list[state.TaskSeen] | None:
        """The tasks of ``framework_id`` with their agents and resources: reconciliation answers
        with states only, so capacity and placement would otherwise ignore a restarted hub's
        survivors. None when the master cannot say."""
        path = f"/master/state?framework_id={framework_id}"
        try:
            return state.tasks_from_master(
                await self._read_master(path, timeout) or {}, framework_id
            )
        except (MesosError, OSError, ValueError) as e:
            self.log.warning("Could not read this framework's tasks from the master: %s", e)
            return None
