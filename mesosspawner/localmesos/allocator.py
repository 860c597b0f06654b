"""The allocator: Mesos's hierarchical DRF offers, filters, offer timeouts, revive/suppress.

Owns the outstanding offers; reads the master's frameworks and agents (the same dicts). The
master asks it to ``schedule()`` a pass whenever resources or interest change, and it runs one
every ``interval`` seconds as Mesos's ``--allocation_interval`` does.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from mesosspawner.mesos.resources import (
    UNRESERVED,
    Resource,
    attribute_to_json,
    contains,
    merge,
    resource_to_json,
    scalar,
    subtract,
)

from .model import Agent, Filter, Framework, OfferRecord
from .quota import Quotas
from .validation import id_value

if TYPE_CHECKING:
    from .maintenance import Maintenance

log = logging.getLogger("mesosspawner.localmesos.master")

DEFAULT_REFUSE_SECONDS = 5.0
# Mesos's --min_allocatable_resources default: "cpus:0.01|mem:32".
MIN_CPUS = 0.01
MIN_MEM = 32.0


def _loop_time() -> float:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


def _later(delay: float, fn, *args) -> asyncio.TimerHandle:
    return asyncio.get_running_loop().call_later(delay, fn, *args)


class Allocator:
    """Offers of one master. Call the methods from the event loop thread only."""

    def __init__(
        self,
        master_id: str,
        frameworks: dict[str, Framework],
        agents: dict[str, Agent],
        *,
        interval: float,
        offer_timeout: float | None,
    ) -> None:
        self.master_id = master_id
        self.frameworks = frameworks
        self.agents = agents
        self.interval = interval
        self.offer_timeout = offer_timeout
        self.offers: dict[str, OfferRecord] = {}
        self._offer_seq = itertools.count()
        self._handle: asyncio.Handle | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._rr = 0
        # Set by the master: roles' quota limits, and the maintenance schedule.
        self.quotas = Quotas()
        self.maintenance: Maintenance | None = None

    def start(self) -> None:
        self._schedule_tick()

    def stop(self) -> None:
        if self._tick:
            self._tick.cancel()
        if self._handle:
            self._handle.cancel()
        for offer in self.offers.values():
            if offer.timer:
                offer.timer.cancel()

    def _schedule_tick(self) -> None:
        self._tick = _later(self.interval, self._on_tick)

    def _on_tick(self) -> None:
        self._schedule_tick()
        self.allocate()

    def schedule(self) -> None:
        """Run an allocation pass soon (once, however many times it is asked before)."""
        if self._handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._handle = loop.call_soon(self._run)

    def _run(self) -> None:
        self._handle = None
        self.allocate()

    def remove_offers(self, fw: Framework, *, rescind: bool) -> None:
        for offer in list(fw.offers.values()):
            self.remove_offer(offer, rescind=rescind)
        if self.maintenance is not None:
            self.maintenance.framework_gone(fw.id)

    def remove_agent_offers(self, agent_id: str) -> None:
        """The agent is gone, unreachable or deactivated: rescind everything offered from it
        (its inverse offers too)."""
        for offer in [o for o in self.offers.values() if o.agent_id == agent_id]:
            self.remove_offer(offer, rescind=True)
        if self.maintenance is not None:
            self.maintenance.agent_gone(agent_id)

    def take(self, fw: Framework, offer_ids: list[str]) -> tuple[list[OfferRecord], str | None]:
        """ACCEPT: the offers used (now withdrawn), or why they cannot be used together."""
        offers: list[OfferRecord] = []
        error = None
        if not offer_ids:
            error = "No offers specified"
        for oid in offer_ids:
            offer = fw.offers.get(oid)
            if offer is None:
                error = f"Offer {oid} is no longer valid"
                continue
            offers.append(offer)
        if error is None and len({o.agent_id for o in offers}) > 1:
            error = "Aggregated offers must belong to one single agent"
        if error is None and len({o.role for o in offers}) > 1:
            error = "Aggregated offers must be allocated to the same role"
        if error is None and len(set(offer_ids)) != len(offer_ids):
            error = "Duplicate offer ids in ACCEPT"
        for offer in offers:
            self.remove_offer(offer, rescind=False)
        return offers, error

    def allocate(self) -> None:
        """One allocation pass: offers, then inverse offers (which a framework gets for an
        agent it uses even while it suppresses offers)."""
        self._offer()
        if self.maintenance is not None:
            self.maintenance.generate(self._next_offer_id)

    def _offer(self) -> None:
        """Offers, as Mesos's hierarchical DRF allocator makes them: agent by agent,
        roles in order of their dominant share (ties by name), each taking its reservations
        plus whatever unreserved resources the roles before it left; within a role the
        framework with the lowest share first."""
        wanting = [
            fw
            for fw in self.frameworks.values()
            if fw.connected and any(r not in fw.suppressed for r in fw.roles)
        ]
        if not wanting:
            return
        # Rotate the framework order between passes: the tie-break among equal shares.
        self._rr = (self._rr + 1) % len(wanting)
        wanting = wanting[self._rr :] + wanting[: self._rr]
        order = {fw.id: i for i, fw in enumerate(wanting)}
        by_role: dict[str, list[Framework]] = {}
        for fw in wanting:
            for role in fw.roles:
                if role not in fw.suppressed:
                    by_role.setdefault(role, []).append(fw)
        shares = (
            _Shares(self.frameworks, self.agents) if len(wanting) > 1 or len(by_role) > 1 else None
        )
        now = _loop_time()
        batches: dict[str, list[OfferRecord]] = {}
        room = self.quotas.room_by_role(self.frameworks, self.agents)
        for agent in self.agents.values():
            if not agent.connected or agent.deactivated:
                continue
            avail = agent.available()
            if not avail:
                continue
            roles = sorted(by_role, key=lambda r: (shares.role(r) if shares else 0.0, r))
            for role in roles:
                res = [r for r in avail if r.role == UNRESERVED or r.role == role]
                if role in room:
                    # Quota limits cap the unreserved scalars offered to the role.
                    res = self.quotas.shrink(res, room[role])
                if not res or not _allocatable(res):
                    continue
                fws = by_role[role]
                if shares is not None and len(fws) > 1:
                    fws = sorted(fws, key=lambda f: (shares.framework(f.id), order[f.id]))
                for fw in fws:
                    if agent.has_gpus and "GPU_RESOURCES" not in fw.capabilities:
                        continue
                    filt = fw.filters.get((agent.id, role))
                    if filt is not None:
                        if filt.expires > now and contains(filt.resources, res):
                            continue
                        if filt.expires <= now:
                            del fw.filters[(agent.id, role)]
                    if role in room:
                        self.quotas.charge(room[role], res)
                        avail = subtract(avail, res)
                    else:
                        avail = [r for r in avail if not (r.role == UNRESERVED or r.role == role)]
                    offer = self._make_offer(fw, agent, role, res, avail)
                    batches.setdefault(fw.id, []).append(offer)
                    if shares is not None:
                        shares.add(fw.id, role, res)
                    break
                if not avail:
                    break
        for fid, offers in batches.items():
            fw = self.frameworks[fid]
            fw.send(
                {
                    "type": "OFFERS",
                    "offers": {"offers": [self._offer_json(fw, o) for o in offers]},
                }
            )

    def _next_offer_id(self) -> str:
        """Offers and inverse offers share one sequence of ids, as on Mesos."""
        return f"{self.master_id}-O{next(self._offer_seq)}"

    def _make_offer(
        self, fw: Framework, agent: Agent, role: str, res: list[Resource], remaining: list[Resource]
    ) -> OfferRecord:
        offer = OfferRecord(self._next_offer_id(), fw.id, agent.id, role, res)
        self.offers[offer.offer_id] = offer
        fw.offers[offer.offer_id] = offer
        agent.add_offered(res, remaining)
        if self.offer_timeout is not None:
            offer.timer = _later(self.offer_timeout, self._offer_expired, offer.offer_id)
        return offer

    def _offer_expired(self, offer_id: str) -> None:
        offer = self.offers.get(offer_id)
        if offer is not None:
            offer.timer = None
            self.remove_offer(offer, rescind=True)
            self.schedule()

    def remove_offer(self, offer: OfferRecord, *, rescind: bool) -> None:
        self.offers.pop(offer.offer_id, None)
        fw = self.frameworks.get(offer.framework_id)
        if fw is not None:
            fw.offers.pop(offer.offer_id, None)
            if rescind:
                fw.send({"type": "RESCIND", "rescind": {"offer_id": {"value": offer.offer_id}}})
        if offer.timer:
            offer.timer.cancel()
            offer.timer = None
        agent = self.agents.get(offer.agent_id)
        if agent is not None:
            agent.release_offered(offer.resources)

    def _offer_json(self, fw: Framework, offer: OfferRecord) -> dict:
        agent = self.agents[offer.agent_id]
        refinement = "RESERVATION_REFINEMENT" in fw.capabilities
        # Mesos clears allocation_info for frameworks that are not MULTI_ROLE capable.
        alloc = offer.role if "MULTI_ROLE" in fw.capabilities else None
        out = {
            "id": {"value": offer.offer_id},
            "framework_id": {"value": fw.id},
            "agent_id": {"value": agent.id},
            "hostname": agent.hostname,
            "url": {
                "scheme": "http",
                # The agent's own address, as it registered (Mesos: the agent's libprocess IP).
                "address": {"hostname": agent.hostname, "ip": agent.ip, "port": agent.port},
                "path": "/slave(1)",
            },
            "resources": [
                resource_to_json(r, refinement=refinement, allocation_role=alloc)
                for r in offer.resources
            ],
            "attributes": [attribute_to_json(a) for a in agent.attributes],
            "executor_ids": [],
        }
        if alloc is not None:
            out["allocation_info"] = {"role": alloc}
        unavailability = self.maintenance and self.maintenance.unavailability(agent)
        if unavailability:
            out["unavailability"] = unavailability
        return out

    def add_filter(
        self, fw: Framework, offer: OfferRecord, res: list[Resource], filters: dict
    ) -> None:
        try:
            refuse = float((filters or {}).get("refuse_seconds", DEFAULT_REFUSE_SECONDS))
        except (TypeError, ValueError):
            refuse = DEFAULT_REFUSE_SECONDS
        if refuse <= 0 or not res:
            return
        key = (offer.agent_id, offer.role)
        prev = fw.filters.get(key)
        expires = _loop_time() + min(refuse, 365 * 86400.0)
        if prev is not None and prev.expires > _loop_time():
            fw.filters[key] = Filter(max(expires, prev.expires), merge([*prev.resources, *res]))
        else:
            fw.filters[key] = Filter(expires, merge(res))
        # Mesos re-checks filters when they expire; so do we.
        _later(refuse + 0.001, self.schedule)

    def decline(self, fw: Framework, body: dict) -> None:
        for oid in body.get("offer_ids") or []:
            offer = fw.offers.get(id_value(oid) or "")
            if offer is None:
                continue  # Mesos ignores unknown offers in DECLINE
            self.remove_offer(offer, rescind=False)
            self.add_filter(fw, offer, offer.resources, body.get("filters") or {})
        self.schedule()

    def revive(self, fw: Framework, roles: list[str]) -> None:
        targets = set(roles) if roles else set(fw.roles)
        if targets - set(fw.roles):
            # Mesos answers 202 and drops the whole call, valid roles included (master.cpp).
            log.warning("framework %s: REVIVE of unsubscribed role(s) %s dropped", fw.id, roles)
            return
        fw.suppressed -= targets
        for key in [k for k in fw.filters if k[1] in targets]:
            del fw.filters[key]
        self.schedule()

    def suppress(self, fw: Framework, roles: list[str]) -> None:
        targets = set(roles) if roles else set(fw.roles)
        if targets - set(fw.roles):
            log.warning("framework %s: SUPPRESS of unsubscribed role(s) %s dropped", fw.id, roles)
            return
        fw.suppressed |= targets


_SHARED_KINDS = ("cpus", "mem", "disk", "gpus")


def _share_vector(res: list[Resource]) -> tuple[float, ...]:
    return tuple(scalar(res, k) for k in _SHARED_KINDS)


class _Shares:
    """Dominant resource shares of roles and frameworks (tasks plus outstanding offers)
    against the connected agents' totals, updated as one allocation pass makes offers."""

    def __init__(self, frameworks: dict[str, Framework], agents: dict[str, Agent]) -> None:
        self.total = {k: 0.0 for k in _SHARED_KINDS}
        for agent in agents.values():
            if agent.connected:
                for k in _SHARED_KINDS:
                    self.total[k] += scalar(agent.total, k)
        self.roles: dict[str, dict[str, float]] = {}
        self.frameworks: dict[str, dict[str, float]] = {}
        for fw in frameworks.values():
            for task in fw.tasks.values():
                if not task.resources_released:
                    if task.share_vector is None:  # resources never change: sum them once
                        task.share_vector = _share_vector(task.resources)
                    self._add_vector(fw.id, task.role, task.share_vector)
            for offer in fw.offers.values():
                self.add(fw.id, offer.role, offer.resources)

    def add(self, framework_id: str, role: str, res: Iterable[Resource]) -> None:
        self._add_vector(framework_id, role, _share_vector(list(res)))

    def _add_vector(self, framework_id: str, role: str, vector: tuple[float, ...]) -> None:
        for bucket in (
            self.roles.setdefault(role, {}),
            self.frameworks.setdefault(framework_id, {}),
        ):
            for k, v in zip(_SHARED_KINDS, vector, strict=True):
                bucket[k] = bucket.get(k, 0.0) + v

    def _dominant(self, alloc: dict[str, float] | None) -> float:
        if not alloc:
            return 0.0
        return max((alloc[k] / t for k, t in self.total.items() if t > 0), default=0.0)

    def role(self, role: str) -> float:
        return self._dominant(self.roles.get(role))

    def framework(self, framework_id: str) -> float:
        return self._dominant(self.frameworks.get(framework_id))


def _allocatable(res: list[Resource]) -> bool:
    return scalar(res, "cpus") >= MIN_CPUS or scalar(res, "mem") >= MIN_MEM
