"""The master's state machine: frameworks, agents, offers, allocation, tasks, status updates.

Transport-free: frameworks are reached through a ``Stream`` (``send(event)``, ``close()``) and
agents through an ``AgentLink``; timers use the running asyncio loop. ``handlers.py`` feeds it
calls, ``agent.py`` / ``remote_agent.py`` feed it registrations and status updates. Hot paths are
per-agent or per-task (no pass over all tasks per offer), so 1,000 agents / 10,000 tasks stay cheap.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import logging
import time
import uuid as uuidlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from mesosspawner.mesos.resources import (
    UNRESERVED,
    Attribute,
    Resource,
    ResourceError,
    attribute_to_json,
    attributes_state_json,
    contains,
    merge,
    resource_from_json,
    resource_to_json,
    resources_state_json,
    scalar,
    subtract,
)

from ..mesos.states import TERMINAL_STATES as TERMINAL

log = logging.getLogger("mesosspawner.localmesos.master")

VERSION = "1.11.0"
DEFAULT_REFUSE_SECONDS = 5.0
DEFAULT_KILL_GRACE = 3.0
MAX_COMPLETED_TASKS = 1000
MAX_COMPLETED_FRAMEWORKS = 50
# Mesos's --min_allocatable_resources default: "cpus:0.01|mem:32".
MIN_CPUS = 0.01
MIN_MEM = 32.0


class CallError(Exception):
    """A call the master refuses with an HTTP status (400, 403, ...) and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Stream(Protocol):
    def send(self, event: dict) -> None: ...
    def close(self) -> None: ...


class AgentLink(Protocol):
    """How the master reaches an agent (in-process object or remote HTTP)."""

    def launch(self, framework: dict, task: dict) -> None: ...
    def kill(self, framework_id: str, task_id: str, grace: float) -> None: ...
    def acknowledge(self, framework_id: str, task_id: str, uuid: str) -> None: ...
    def shutdown_framework(self, framework_id: str) -> None: ...


class Registry(Protocol):
    """Where the master records admitted agents so that the next leader knows them (Mesos's
    replicated registry; ZooKeeper in localmesos). Calls must not block."""

    def admit(self, agent_id: str) -> None: ...
    def mark_unreachable(self, agent_id: str) -> None: ...


def is_terminal(state: str) -> bool:
    return state in TERMINAL


def _value(obj: object) -> str | None:
    """``{"value": "x"}`` → ``"x"``; anything else → None."""
    if isinstance(obj, dict) and isinstance(obj.get("value"), str):
        return obj["value"]
    return None


def _nanos_to_seconds(d: object, default: float) -> float:
    if isinstance(d, dict) and "nanoseconds" in d:
        try:
            return max(int(d["nanoseconds"]) / 1e9, 0.0)
        except (TypeError, ValueError):
            return default
    return default


@dataclass
class Task:
    task_id: str
    framework_id: str
    agent_id: str
    name: str
    role: str
    resources: list[Resource]
    info: dict
    state: str = "TASK_STAGING"
    statuses: list[dict] = field(default_factory=list)
    status_update_state: str | None = None
    status_update_uuid: str | None = None
    resources_released: bool = False
    latest_status: dict | None = None
    share_vector: tuple[float, ...] | None = None  # cpus, mem, disk, gpus for DRF shares
    _static_json: dict | None = None
    # state.json of a task changes only with its state or statuses: cache it for 10,000 tasks.
    _json: dict | None = None
    _json_key: tuple | None = None

    def state_json(self) -> dict:
        if self._static_json is None:
            info = self.info
            static = {
                "id": self.task_id,
                "name": self.name,
                "framework_id": self.framework_id,
                "executor_id": "",
                "slave_id": self.agent_id,
                "agent_id": self.agent_id,
                "role": self.role,
                "resources": resources_state_json(self.resources),
            }
            if "labels" in info:
                static["labels"] = (info.get("labels") or {}).get("labels", [])
            if "container" in info:
                static["container"] = info["container"]
            if "discovery" in info:
                static["discovery"] = info["discovery"]
            self._static_json = static
        key = (self.state, len(self.statuses), id(self.statuses[-1]) if self.statuses else 0)
        if self._json_key != key or self._json is None:
            out = dict(self._static_json)
            out["state"] = self.state
            out["statuses"] = [
                {k: v for k, v in s.items() if k in _STATUS_KEYS} for s in self.statuses
            ]
            self._json, self._json_key = out, key
        return self._json


_STATUS_KEYS = ("state", "timestamp", "container_status", "healthy")


@dataclass
class OfferRecord:
    offer_id: str
    framework_id: str
    agent_id: str
    role: str
    resources: list[Resource]
    timer: asyncio.TimerHandle | None = None


@dataclass
class Filter:
    expires: float  # loop time
    resources: list[Resource]


class Framework:
    def __init__(self, framework_id: str, info: dict) -> None:
        self.id = framework_id
        self.tasks: dict[str, Task] = {}
        self.unreachable_tasks: dict[str, Task] = {}
        self.completed_tasks: deque[Task] = deque(maxlen=MAX_COMPLETED_TASKS)
        self.offers: dict[str, OfferRecord] = {}
        self.suppressed: set[str] = set()
        self.filters: dict[tuple[str, str], Filter] = {}
        self.stream: Stream | None = None
        self.stream_id: str | None = None
        self.failover_timer: asyncio.TimerHandle | None = None
        self.recovered = False
        self.registered_time = time.time()
        self.reregistered_time: float | None = None
        self.unregistered_time = 0.0
        self.set_info(info)

    def set_info(self, info: dict) -> None:
        self.info = dict(info)
        self.info["id"] = {"value": self.id}
        self.capabilities = {
            c.get("type") for c in info.get("capabilities") or [] if isinstance(c, dict)
        }
        if "MULTI_ROLE" in self.capabilities:
            self.roles = list(dict.fromkeys(info.get("roles") or []))
        else:
            self.roles = [info.get("role") or UNRESERVED]

    @property
    def connected(self) -> bool:
        return self.stream is not None

    @property
    def partition_aware(self) -> bool:
        return "PARTITION_AWARE" in self.capabilities

    @property
    def failover_timeout(self) -> float:
        try:
            return max(float(self.info.get("failover_timeout") or 0), 0.0)
        except (TypeError, ValueError):
            return 0.0

    def send(self, event: dict) -> None:
        if self.stream is not None:
            self.stream.send(event)


class Agent:
    def __init__(
        self,
        agent_id: str,
        hostname: str,
        port: int,
        resources: list[Resource],
        attributes: list[Attribute],
        link: AgentLink,
        ip: str = "127.0.0.1",
    ) -> None:
        self.id = agent_id
        self.hostname = hostname
        self.ip = ip
        self.port = port
        self.total = merge(resources)
        self.attributes = attributes
        self.link = link
        self.used: list[Resource] = []
        self.offered: list[Resource] = []
        self.tasks: dict[tuple[str, str], Task] = {}
        self.connected = True
        self.registered_time = time.time()
        self.unreachable_timer: asyncio.TimerHandle | None = None
        # (framework id, task id) -> kill grace: KILLs to resend if the agent re-registers
        # with the task still alive (Mesos's Slave::killedTasks).
        self.killed_tasks: dict[tuple[str, str], float] = {}
        self.has_gpus = scalar(self.total, "gpus") > 0
        self.static_state: dict | None = None  # the state.json fields that never change
        self._available: list[Resource] | None = None

    def available(self) -> list[Resource]:
        if self._available is None:
            self._available = subtract(subtract(self.total, self.used), self.offered)
        return self._available

    def _take(self, res: Iterable[Resource]) -> None:
        # Keep `available` up to date incrementally: recomputing it from totals on every
        # offer and decline is the allocator's hottest path at 1,000 agents.
        if self._available is not None:
            try:
                self._available = subtract(self._available, res)
            except ResourceError:
                self._available = None

    def _give(self, res: Iterable[Resource]) -> None:
        if self._available is not None:
            self._available = merge([*self._available, *res])

    def add_used(self, res: Iterable[Resource]) -> None:
        res = list(res)
        self.used = merge([*self.used, *res])
        self._take(res)

    def release_used(self, res: Iterable[Resource]) -> None:
        res = list(res)
        try:
            self.used = subtract(self.used, res)
            self._give(res)
        except ResourceError:
            log.warning("agent %s: released resources it did not hold", self.hostname)
            self._available = None

    def add_offered(self, res: Iterable[Resource], remaining: list[Resource] | None = None) -> None:
        """Offer ``res``; ``remaining`` (what stays available) spares a subtraction."""
        res = list(res)
        self.offered = merge([*self.offered, *res]) if self.offered else res
        if remaining is not None:
            self._available = remaining
        else:
            self._take(res)

    def release_offered(self, res: Iterable[Resource]) -> None:
        res = list(res)
        try:
            # Usually the agent had exactly one offer out: skip the subtraction.
            self.offered = [] if res == self.offered else subtract(self.offered, res)
            self._give(res)
        except ResourceError:
            self.offered = []
            self._available = None

    def info_json(self) -> dict:
        return {
            "id": {"value": self.id},
            "hostname": self.hostname,
            "port": self.port,
            "resources": [resource_to_json(r) for r in self.total],
            "attributes": [attribute_to_json(a) for a in self.attributes],
        }


class Master:
    """All master state and rules. Call the methods from the event loop thread only."""

    def __init__(
        self,
        *,
        hostname: str = "127.0.0.1",
        ip: str = "127.0.0.1",
        port: int = 5050,
        heartbeat_interval: float = 15.0,
        offer_timeout: float | None = None,
        agent_unreachable_timeout: float = 75.0,
        allocation_interval: float = 1.0,
        agent_reregister_timeout: float = 600.0,
        master_id: str | None = None,
    ) -> None:
        self.id = master_id or str(uuidlib.uuid4())
        self.hostname = hostname
        self.ip = ip
        self.port = port
        self.heartbeat_interval = heartbeat_interval
        self.offer_timeout = offer_timeout
        self.agent_unreachable_timeout = agent_unreachable_timeout
        self.allocation_interval = allocation_interval
        self.start_time = time.time()
        self.elected_time: float | None = None
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: deque[Framework] = deque(maxlen=MAX_COMPLETED_FRAMEWORKS)
        self.removed_framework_ids: set[str] = set()
        self.agents: dict[str, Agent] = {}
        self.unreachable_agents: dict[str, float] = {}
        # Agents the registry knew at election that have not re-registered yet.
        self.recovered_agents: dict[str, asyncio.TimerHandle | None] = {}
        self.registry: Registry | None = None
        self.agent_reregister_timeout = agent_reregister_timeout
        self.offers: dict[str, OfferRecord] = {}
        self._fw_seq = itertools.count()
        self._agent_seq = itertools.count(0)
        self._offer_seq = itertools.count()
        self._alloc_handle: asyncio.Handle | None = None
        self._tick: asyncio.TimerHandle | None = None
        self._rr = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self, registry_state: dict[str, str] | None = None) -> None:
        """Begin leading; ``registry_state`` maps agent ids to "admitted" / "unreachable"."""
        self.elected_time = time.time()
        for agent_id, state in (registry_state or {}).items():
            if state == "unreachable":
                self.unreachable_agents[agent_id] = time.time()
            else:
                self.recovered_agents[agent_id] = self._later(
                    self.agent_reregister_timeout, self._recovered_agent_expired, agent_id
                )
        self._schedule_tick()

    def _recovered_agent_expired(self, agent_id: str) -> None:
        """A recovered agent did not re-register in time: unreachable, as Mesos marks it."""
        if self.recovered_agents.pop(agent_id, None) is None:
            return
        self.unreachable_agents[agent_id] = time.time()
        if self.registry is not None:
            self.registry.mark_unreachable(agent_id)
        for fw in self.frameworks.values():
            fw.send({"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}})

    def stop(self) -> None:
        if self._tick:
            self._tick.cancel()
        if self._alloc_handle:
            self._alloc_handle.cancel()
        for fw in self.frameworks.values():
            if fw.failover_timer:
                fw.failover_timer.cancel()
            if fw.stream:
                fw.stream.close()
        for agent in self.agents.values():
            if agent.unreachable_timer:
                agent.unreachable_timer.cancel()
        for timer in self.recovered_agents.values():
            if timer is not None:
                timer.cancel()
        for offer in self.offers.values():
            if offer.timer:
                offer.timer.cancel()

    def master_info(self) -> dict:
        return {
            "id": self.id,
            "ip": _ip_to_int(self.ip),
            "port": self.port,
            "pid": f"master@{self.ip}:{self.port}",
            "hostname": self.hostname,
            "version": VERSION,
            "address": {"hostname": self.hostname, "ip": self.ip, "port": self.port},
        }

    def _schedule_tick(self) -> None:
        loop = asyncio.get_running_loop()
        self._tick = loop.call_later(self.allocation_interval, self._on_tick)

    def _on_tick(self) -> None:
        self._schedule_tick()
        self.allocate()

    def schedule_allocation(self) -> None:
        if self._alloc_handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._alloc_handle = loop.call_soon(self._run_allocation)

    def _run_allocation(self) -> None:
        self._alloc_handle = None
        self.allocate()

    def _now(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    def _later(self, delay: float, fn, *args) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, fn, *args)

    # ------------------------------------------------------------------ frameworks

    def subscribe(self, call: dict, stream: Stream, stream_id: str) -> Framework | None:
        """SUBSCRIBE: returns the framework, or None after sending ERROR and closing."""
        sub = call.get("subscribe") or {}
        info = sub.get("framework_info") or {}
        error = validate_framework_info(info)
        fid = _value(info.get("id"))
        if error is None and fid and fid in self.removed_framework_ids:
            error = "Framework has been removed"
        if error is not None:
            stream.send({"type": "ERROR", "error": {"message": error}})
            stream.close()
            return None
        fw = self.frameworks.get(fid) if fid else None
        if fw is None:
            if not fid:
                fid = f"{self.id}-{next(self._fw_seq):04d}"
            fw = Framework(fid, info)
            self.frameworks[fid] = fw
        else:
            fw.set_info(info)
            fw.reregistered_time = time.time()
            if fw.stream is not None:
                old = fw.stream
                fw.stream = None
                old.send({"type": "ERROR", "error": {"message": "Framework failed over"}})
                old.close()
            # Mesos discards a failing-over framework's offers; allocation offers them anew.
            for offer in list(fw.offers.values()):
                self._remove_offer(offer, rescind=False)
        fw.recovered = False
        if fw.failover_timer:
            fw.failover_timer.cancel()
            fw.failover_timer = None
        fw.stream = stream
        fw.stream_id = stream_id
        suppressed = sub.get("suppressed_roles") or []
        fw.suppressed = {r for r in suppressed if r in fw.roles}
        stream.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": {"value": fw.id},
                    "heartbeat_interval_seconds": self.heartbeat_interval,
                    "master_info": self.master_info(),
                },
            }
        )
        self.schedule_allocation()
        return fw

    def stream_closed(self, fw_id: str, stream: Stream) -> None:
        """The framework's event stream broke: keep its tasks until failover_timeout."""
        fw = self.frameworks.get(fw_id)
        if fw is None or fw.stream is not stream:
            return
        fw.stream = None
        fw.stream_id = None
        fw.unregistered_time = time.time()
        for offer in list(fw.offers.values()):
            self._remove_offer(offer, rescind=False)
        timeout = fw.failover_timeout
        fw.failover_timer = self._later(timeout, self._failover_expired, fw.id)

    def _failover_expired(self, fw_id: str) -> None:
        fw = self.frameworks.get(fw_id)
        if fw is not None and not fw.connected:
            log.info("framework %s: failover timeout expired, removing it", fw_id)
            self.remove_framework(fw)

    def remove_framework(self, fw: Framework) -> None:
        """TEARDOWN / failover timeout: kill every task and forget the framework."""
        if fw.failover_timer:
            fw.failover_timer.cancel()
            fw.failover_timer = None
        for offer in list(fw.offers.values()):
            self._remove_offer(offer, rescind=False)
        agents = {t.agent_id for t in fw.tasks.values()} | {
            t.agent_id for t in fw.unreachable_tasks.values()
        }
        for agent_id in agents:
            agent = self.agents.get(agent_id)
            if agent is not None and agent.connected:
                agent.link.shutdown_framework(fw.id)
        for task in list(fw.tasks.values()):
            if not is_terminal(task.state):
                task.state = "TASK_KILLED"
            self._remove_task(task)
        fw.unreachable_tasks.clear()
        self.frameworks.pop(fw.id, None)
        self.removed_framework_ids.add(fw.id)
        self.completed_frameworks.append(fw)
        fw.unregistered_time = time.time()
        if fw.stream is not None:
            stream = fw.stream
            fw.stream = None
            stream.close()
        self.schedule_allocation()

    def framework_for_call(self, call: dict, stream_id: str | None) -> Framework:
        """The 403/400 rules Mesos applies to every non-SUBSCRIBE call."""
        fid = _value(call.get("framework_id"))
        if not fid:
            raise CallError(400, "Expecting 'framework_id' to be present")
        fw = self.frameworks.get(fid)
        if fw is None:
            raise CallError(400, "Framework cannot be found")
        if not fw.connected:
            raise CallError(403, "Framework is not subscribed")
        if stream_id is None:
            raise CallError(
                400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
            )
        if stream_id != fw.stream_id:
            raise CallError(
                400,
                f"The stream ID '{stream_id}' included in this request didn't match the stream ID "
                f"currently associated with framework ID {fid}",
            )
        return fw

    def handle_call(self, fw: Framework, call: dict) -> None:
        kind = call.get("type")
        handler = {
            "TEARDOWN": lambda: self.remove_framework(fw),
            "ACCEPT": lambda: self.accept(fw, call.get("accept") or {}),
            "DECLINE": lambda: self.decline(fw, call.get("decline") or {}),
            "REVIVE": lambda: self.revive(fw, (call.get("revive") or {}).get("roles") or []),
            "SUPPRESS": lambda: self.suppress(fw, (call.get("suppress") or {}).get("roles") or []),
            "KILL": lambda: self.kill(fw, call.get("kill") or {}),
            "ACKNOWLEDGE": lambda: self.acknowledge(fw, call.get("acknowledge") or {}),
            "RECONCILE": lambda: self.reconcile(
                fw, (call.get("reconcile") or {}).get("tasks") or []
            ),
            "MESSAGE": lambda: None,  # no custom executors in localmesos: nothing to deliver to
            "REQUEST": lambda: None,
            "SHUTDOWN": lambda: None,
            "UPDATE_FRAMEWORK": lambda: self.update_framework(
                fw, call.get("update_framework") or {}
            ),
            "ACCEPT_INVERSE_OFFERS": lambda: None,
            "DECLINE_INVERSE_OFFERS": lambda: None,
            "ACKNOWLEDGE_OPERATION_STATUS": lambda: None,
            "RECONCILE_OPERATIONS": lambda: None,
        }.get(kind)
        if handler is None:
            raise CallError(400, f"Unknown call type {kind!r}")
        handler()

    def update_framework(self, fw: Framework, body: dict) -> None:
        info = body.get("framework_info") or {}
        error = validate_framework_info(info)
        if error:
            raise CallError(400, error)
        if _value(info.get("id")) != fw.id:
            raise CallError(400, "'framework_info.id' must match the framework's id")
        fw.set_info(info)
        fw.suppressed = {r for r in (body.get("suppressed_roles") or []) if r in fw.roles}
        for offer in list(fw.offers.values()):
            if offer.role not in fw.roles:
                self._remove_offer(offer, rescind=True)
        self.schedule_allocation()

    # ------------------------------------------------------------------ allocation

    def allocate(self) -> None:
        """One allocation pass, as Mesos's hierarchical DRF allocator does it: agent by agent,
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
        shares = _Shares(self) if len(wanting) > 1 or len(by_role) > 1 else None
        now = self._now()
        batches: dict[str, list[OfferRecord]] = {}
        for agent in self.agents.values():
            if not agent.connected:
                continue
            avail = agent.available()
            if not avail:
                continue
            roles = sorted(by_role, key=lambda r: (shares.role(r) if shares else 0.0, r))
            for role in roles:
                res = [r for r in avail if r.role == UNRESERVED or r.role == role]
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

    def _make_offer(
        self, fw: Framework, agent: Agent, role: str, res: list[Resource], remaining: list[Resource]
    ) -> OfferRecord:
        offer = OfferRecord(f"{self.id}-O{next(self._offer_seq)}", fw.id, agent.id, role, res)
        self.offers[offer.offer_id] = offer
        fw.offers[offer.offer_id] = offer
        agent.add_offered(res, remaining)
        if self.offer_timeout is not None:
            offer.timer = self._later(self.offer_timeout, self._offer_expired, offer.offer_id)
        return offer

    def _offer_expired(self, offer_id: str) -> None:
        offer = self.offers.get(offer_id)
        if offer is not None:
            offer.timer = None
            self._remove_offer(offer, rescind=True)
            self.schedule_allocation()

    def _remove_offer(self, offer: OfferRecord, *, rescind: bool) -> None:
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
        return out

    def _add_filter(
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
        expires = self._now() + min(refuse, 365 * 86400.0)
        if prev is not None and prev.expires > self._now():
            fw.filters[key] = Filter(max(expires, prev.expires), merge([*prev.resources, *res]))
        else:
            fw.filters[key] = Filter(expires, merge(res))
        # Mesos re-checks filters when they expire; so do we.
        self._later(refuse + 0.001, self.schedule_allocation)

    # ------------------------------------------------------------------ calls

    def decline(self, fw: Framework, body: dict) -> None:
        for oid in body.get("offer_ids") or []:
            offer = fw.offers.get(_value(oid) or "")
            if offer is None:
                continue  # Mesos ignores unknown offers in DECLINE
            self._remove_offer(offer, rescind=False)
            self._add_filter(fw, offer, offer.resources, body.get("filters") or {})
        self.schedule_allocation()

    def revive(self, fw: Framework, roles: list[str]) -> None:
        targets = set(roles) if roles else set(fw.roles)
        if targets - set(fw.roles):
            # Mesos answers 202 and drops the whole call, valid roles included (master.cpp).
            log.warning("framework %s: REVIVE of unsubscribed role(s) %s dropped", fw.id, roles)
            return
        fw.suppressed -= targets
        for key in [k for k in fw.filters if k[1] in targets]:
            del fw.filters[key]
        self.schedule_allocation()

    def suppress(self, fw: Framework, roles: list[str]) -> None:
        targets = set(roles) if roles else set(fw.roles)
        if targets - set(fw.roles):
            log.warning("framework %s: SUPPRESS of unsubscribed role(s) %s dropped", fw.id, roles)
            return
        fw.suppressed |= targets

    def accept(self, fw: Framework, body: dict) -> None:
        offer_ids = [_value(o) or "" for o in body.get("offer_ids") or []]
        operations = body.get("operations") or []
        filters = body.get("filters") or {}
        launches: list[dict] = []
        for op in operations:
            if not isinstance(op, dict):
                continue
            if op.get("type") == "LAUNCH":
                launches.extend((op.get("launch") or {}).get("task_infos") or [])
            elif op.get("type") == "LAUNCH_GROUP":
                group = (op.get("launch_group") or {}).get("task_group") or {}
                for t in group.get("tasks") or []:
                    self._master_update(
                        fw,
                        t,
                        "TASK_ERROR",
                        "REASON_TASK_GROUP_INVALID",
                        "localmesos does not support task groups (LAUNCH_GROUP)",
                    )
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
            self._remove_offer(offer, rescind=False)
        if error is not None:
            state = "TASK_DROPPED" if fw.partition_aware else "TASK_LOST"
            for t in launches:
                self._master_update(
                    fw,
                    t,
                    state,
                    "REASON_INVALID_OFFERS",
                    f"Task launched with invalid offers: {error}",
                )
            self.schedule_allocation()
            return
        agent = self.agents.get(offers[0].agent_id)
        role = offers[0].role
        pool = merge(r for o in offers for r in o.resources)
        seen: set[str] = set()
        for t in launches:
            if agent is None or not agent.connected:
                state = "TASK_DROPPED" if fw.partition_aware else "TASK_LOST"
                self._master_update(fw, t, state, "REASON_AGENT_REMOVED", "Agent is gone")
                continue
            try:
                res = validate_task(t, fw, agent, role, pool, seen)
            except CallError as e:
                self._master_update(fw, t, "TASK_ERROR", "REASON_TASK_INVALID", e.message)
                continue
            pool = subtract(pool, res)
            tid = _value(t.get("task_id")) or ""
            seen.add(tid)
            self._launch(fw, agent, role, t, res)
        if pool and offers:
            self._add_filter(fw, offers[0], pool, filters)
        self.schedule_allocation()

    def _launch(
        self, fw: Framework, agent: Agent, role: str, info: dict, res: list[Resource]
    ) -> None:
        tid = _value(info["task_id"]) or ""
        task = Task(
            task_id=tid,
            framework_id=fw.id,
            agent_id=agent.id,
            name=str(info.get("name") or ""),
            role=role,
            resources=res,
            info=info,
        )
        fw.tasks[tid] = task
        agent.tasks[(fw.id, tid)] = task
        agent.add_used(res)
        launch_info = dict(info)
        launch_info["resources"] = [resource_to_json(r, allocation_role=role) for r in res]
        launch_info["agent_id"] = {"value": agent.id}
        agent.link.launch(fw.info, launch_info)

    def _master_update(
        self, fw: Framework, task_info: dict, state: str, reason: str, message: str
    ) -> None:
        tid = _value(task_info.get("task_id")) or ""
        status = {
            "task_id": {"value": tid},
            "state": state,
            "source": "SOURCE_MASTER",
            "reason": reason,
            "message": message,
            "timestamp": time.time(),
        }
        aid = _value(task_info.get("agent_id"))
        if aid:
            status["agent_id"] = {"value": aid}
        fw.send({"type": "UPDATE", "update": {"status": status}})

    def kill(self, fw: Framework, body: dict) -> None:
        tid = _value(body.get("task_id"))
        if not tid:
            raise CallError(400, "Expecting 'kill.task_id' to be present")
        task = fw.tasks.get(tid)
        if task is None or is_terminal(task.state):
            # Mesos answers a kill of an unknown task with a reconciliation of that task.
            self.reconcile(fw, [{"task_id": {"value": tid}, "agent_id": body.get("agent_id")}])
            return
        agent = self.agents.get(task.agent_id)
        if agent is None:
            return
        policy = body.get("kill_policy") or (task.info.get("kill_policy") or {})
        grace = _nanos_to_seconds(policy.get("grace_period"), DEFAULT_KILL_GRACE)
        # Remembered even when connected: the agent may be partitioned without the master
        # knowing yet. Sent again when it re-registers with the task still alive.
        agent.killed_tasks[(fw.id, tid)] = grace
        if agent.connected:
            agent.link.kill(fw.id, tid, grace)

    def acknowledge(self, fw: Framework, body: dict) -> None:
        tid = _value(body.get("task_id"))
        aid = _value(body.get("agent_id"))
        raw = body.get("uuid")
        if not tid or not aid or not isinstance(raw, str):
            raise CallError(400, "ACKNOWLEDGE needs 'task_id', 'agent_id' and 'uuid'")
        try:
            decoded = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise CallError(400, f"'uuid' {raw!r} is not base64") from None
        if len(decoded) != 16:
            raise CallError(400, f"'uuid' {raw!r} is not a 16-byte UUID")
        agent = self.agents.get(aid)
        if agent is None:
            return  # Mesos drops acks for unknown agents
        if agent.connected:
            agent.link.acknowledge(fw.id, tid, raw)
        task = fw.tasks.get(tid)
        if (
            task is not None
            and task.status_update_uuid == raw
            and task.status_update_state is not None
            and is_terminal(task.status_update_state)
        ):
            self._remove_task(task)

    def reconcile(self, fw: Framework, tasks: list[dict]) -> None:
        updates: list[dict] = []
        if not tasks:
            # Implicit: Mesos answers for framework->tasks (not the unreachable ones).
            for task in fw.tasks.values():
                updates.append(self._reconcile_status(task))
        for entry in tasks:
            tid = _value((entry or {}).get("task_id"))
            if not tid:
                continue
            aid = _value((entry or {}).get("agent_id"))
            task = fw.tasks.get(tid)
            if task is not None:
                updates.append(self._reconcile_status(task))
                continue
            pa = fw.partition_aware
            if (aid and aid in self.recovered_agents) or (not aid and self.recovered_agents):
                continue  # Mesos stays silent until the agent re-registers (or times out)
            if aid and aid in self.agents:
                state, msg = (
                    ("TASK_GONE" if pa else "TASK_LOST"),
                    "Reconciliation: Task is unknown to the agent",
                )
            elif aid and aid in self.unreachable_agents:
                state, msg = (
                    ("TASK_UNREACHABLE" if pa else "TASK_LOST"),
                    "Reconciliation: Task is unreachable",
                )
            else:
                state, msg = (
                    ("TASK_UNKNOWN" if pa else "TASK_LOST"),
                    "Reconciliation: Task is unknown",
                )
            status = {
                "task_id": {"value": tid},
                "state": state,
                "source": "SOURCE_MASTER",
                "reason": "REASON_RECONCILIATION",
                "message": msg,
                "timestamp": time.time(),
            }
            if aid:
                status["agent_id"] = {"value": aid}
            updates.append(status)
        for status in updates:
            fw.send({"type": "UPDATE", "update": {"status": status}})

    def _reconcile_status(self, task: Task) -> dict:
        base = dict(task.latest_status or {})
        base.pop("uuid", None)
        base.update(
            {
                "task_id": {"value": task.task_id},
                "agent_id": {"value": task.agent_id},
                # The state of the update in flight, as Mesos reports it, else the latest.
                "state": task.status_update_state or task.state,
                "source": "SOURCE_MASTER",
                "reason": "REASON_RECONCILIATION",
                "message": "Reconciliation: Latest task state",
                "timestamp": time.time(),
            }
        )
        return base

    # ------------------------------------------------------------------ tasks

    def _remove_task(self, task: Task) -> None:
        fw = self.frameworks.get(task.framework_id)
        agent = self.agents.get(task.agent_id)
        if not task.resources_released and agent is not None:
            agent.release_used(task.resources)
            task.resources_released = True
        if agent is not None:
            agent.tasks.pop((task.framework_id, task.task_id), None)
            agent.killed_tasks.pop((task.framework_id, task.task_id), None)
        if fw is not None:
            fw.tasks.pop(task.task_id, None)
            fw.unreachable_tasks.pop(task.task_id, None)
            fw.completed_tasks.append(task)
        self.schedule_allocation()

    def agent_status_update(
        self, agent_id: str, fw_id: str, status: dict, latest_state: str | None = None
    ) -> None:
        """An agent's status update (with uuid): record it, forward it if the framework listens."""
        agent = self.agents.get(agent_id)
        fw = self.frameworks.get(fw_id)
        tid = _value(status.get("task_id")) or ""
        task = fw.tasks.get(tid) if fw else None
        if agent is None:
            return
        if fw is None or task is None:
            # Framework gone (removed) or unknown: ack on its behalf so the agent stops retrying.
            if fw_id in self.removed_framework_ids and status.get("uuid"):
                agent.link.acknowledge(fw_id, tid, status["uuid"])
            return
        task.state = latest_state or status.get("state", task.state)
        task.status_update_state = status.get("state")
        task.status_update_uuid = status.get("uuid")
        task.latest_status = status
        if task.statuses and task.statuses[-1].get("state") == status.get("state"):
            task.statuses[-1] = status  # a retry or a health change of the same state
        else:
            task.statuses.append(status)
        if is_terminal(task.state) and not task.resources_released:
            agent.release_used(task.resources)
            task.resources_released = True
            self.schedule_allocation()
        fw.send({"type": "UPDATE", "update": {"status": status}})

    # ------------------------------------------------------------------ agents

    def register_agent(
        self,
        hostname: str,
        resources: list[Resource],
        attributes: list[Attribute],
        link: AgentLink,
        *,
        port: int = 5051,
        agent_id: str | None = None,
        tasks: Iterable[dict] = (),
        frameworks: Iterable[dict] = (),
        ip: str = "127.0.0.1",
    ) -> str:
        """Register (or re-register, with ``agent_id`` and running ``tasks``) an agent."""
        if agent_id and agent_id in self.agents:
            agent = self.agents[agent_id]
            agent.link = link
            agent.connected = True
            if agent.unreachable_timer:
                agent.unreachable_timer.cancel()
                agent.unreachable_timer = None
            self._resend_kills(agent, tasks)
            self.schedule_allocation()
            return agent_id
        if not agent_id:
            agent_id = f"{self.id}-S{next(self._agent_seq)}"
        was_unreachable = self.unreachable_agents.pop(agent_id, None) is not None
        timer = self.recovered_agents.pop(agent_id, None)
        if timer is not None:
            timer.cancel()
        if self.registry is not None:
            self.registry.admit(agent_id)
        agent = Agent(agent_id, hostname, port, resources, attributes, link, ip)
        self.agents[agent_id] = agent
        infos = {_value(f.get("id")): f for f in frameworks if isinstance(f, dict)}
        # As Mesos: an agent the master did not expect (it was unreachable, or is unknown)
        # brings its tasks back, and each framework hears their state again.
        message = None
        if timer is None:
            message = (
                "Unreachable agent re-reregistered"
                if was_unreachable
                else "Unknown agent reregistered"
            )
        for t in tasks:
            task = self._recover_task(agent, t, infos)
            if task is not None and message is not None:
                self._reregistered_update(task, message)
        self.schedule_allocation()
        return agent_id

    def _resend_kills(self, agent: Agent, tasks: Iterable[dict]) -> None:
        alive = {
            (_value(t.get("framework_id")), _value((t.get("task_info") or {}).get("task_id")))
            for t in tasks
            if not is_terminal(t.get("state") or "TASK_STAGING")
        }
        for key, grace in list(agent.killed_tasks.items()):
            if key in alive:
                agent.link.kill(key[0], key[1], grace)
        for fid, tid in alive - set(agent.tasks):
            # Declared lost while the agent was away (its framework does not checkpoint):
            # nobody owns it any more.
            agent.link.kill(fid or "", tid or "", 0)

    def _reregistered_update(self, task: Task, message: str) -> None:
        fw = self.frameworks.get(task.framework_id)
        if fw is None or not fw.connected:
            return  # Mesos drops it; the framework reconciles when it comes back
        status = {
            "task_id": {"value": task.task_id},
            "agent_id": {"value": task.agent_id},
            "state": task.state,
            "source": "SOURCE_MASTER",
            "reason": "REASON_AGENT_REREGISTERED",
            "message": message,
            "timestamp": time.time(),
        }
        container = (task.latest_status or {}).get("container_status")
        if container:
            status["container_status"] = container
        fw.send({"type": "UPDATE", "update": {"status": status}})

    def _recover_task(self, agent: Agent, t: dict, infos: dict) -> Task | None:
        """A task an agent brings back when it re-registers (master failover / partition heal)."""
        fid = _value(t.get("framework_id")) or ""
        info = t.get("task_info") or {}
        tid = _value(info.get("task_id")) or ""
        fw = self.frameworks.get(fid)
        if fw is None:
            if fid in self.removed_framework_ids:
                agent.link.shutdown_framework(fid)
                return None
            fw = Framework(fid, infos.get(fid) or {"user": "", "name": ""})
            fw.recovered = True
            self.frameworks[fid] = fw
            fw.failover_timer = self._later(fw.failover_timeout, self._failover_expired, fid)
        # Tasks the master had declared lost come back, for every framework (master.cpp:
        # "Avoid tracking a task as both terminal and non-terminal").
        for old in [c for c in fw.completed_tasks if c.task_id == tid]:
            fw.completed_tasks.remove(old)
        res = resources_from_task(info)
        role = t.get("role") or UNRESERVED
        task = Task(tid, fid, agent.id, str(info.get("name") or ""), role, res, info)
        task.state = t.get("state") or "TASK_STAGING"
        task.statuses = list(t.get("statuses") or [])
        task.latest_status = task.statuses[-1] if task.statuses else None
        fw.unreachable_tasks.pop(tid, None)
        fw.tasks[tid] = task
        agent.tasks[(fid, tid)] = task
        if is_terminal(task.state):
            task.resources_released = True
        else:
            agent.add_used(res)
        return task

    def agent_disconnected(self, agent_id: str) -> None:
        """The agent stopped answering: rescind its offers; unreachable after the timeout."""
        agent = self.agents.get(agent_id)
        if agent is None or not agent.connected:
            return
        agent.connected = False
        for offer in [o for o in self.offers.values() if o.agent_id == agent_id]:
            self._remove_offer(offer, rescind=True)
        # Mesos (Master::exited): the tasks of frameworks that do not checkpoint cannot
        # survive an agent restart, so they are lost at once; the others wait for the agent.
        for task in list(agent.tasks.values()):
            fw = self.frameworks.get(task.framework_id)
            if fw is None or fw.info.get("checkpoint") or is_terminal(task.state):
                continue
            status = {
                "task_id": {"value": task.task_id},
                "agent_id": {"value": agent_id},
                "executor_id": {"value": task.task_id},
                "state": "TASK_LOST",
                "source": "SOURCE_MASTER",
                "reason": "REASON_AGENT_DISCONNECTED",
                "message": f"Agent {agent.hostname} disconnected",
                "timestamp": time.time(),
            }
            task.state = "TASK_LOST"
            task.status_update_state = None
            task.latest_status = status
            task.statuses.append(status)
            self._remove_task(task)
            fw.send({"type": "UPDATE", "update": {"status": status}})
        self.agent_unresponsive(agent_id)

    def agent_unresponsive(self, agent_id: str) -> None:
        """The agent stopped answering pings (its connection may look fine): unreachable
        after the timeout unless it re-registers first."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.unreachable_timer is not None:
            return
        agent.unreachable_timer = self._later(
            self.agent_unreachable_timeout, self.mark_unreachable, agent_id
        )

    def mark_unreachable(self, agent_id: str) -> None:
        agent = self.agents.pop(agent_id, None)
        if agent is None:
            return
        agent.unreachable_timer = None
        self.unreachable_agents[agent_id] = time.time()
        if self.registry is not None:
            self.registry.mark_unreachable(agent_id)
        for offer in [o for o in self.offers.values() if o.agent_id == agent_id]:
            self._remove_offer(offer, rescind=True)
        for task in list(agent.tasks.values()):
            fw = self.frameworks.get(task.framework_id)
            if fw is None or is_terminal(task.state):
                continue
            state = "TASK_UNREACHABLE" if fw.partition_aware else "TASK_LOST"
            status = {
                "task_id": {"value": task.task_id},
                "agent_id": {"value": agent_id},
                "state": state,
                "source": "SOURCE_MASTER",
                "reason": "REASON_AGENT_REMOVED",
                "message": "health check timed out",
                "timestamp": time.time(),
            }
            if fw.partition_aware:
                status["unreachable_time"] = {"nanoseconds": int(time.time() * 1e9)}
            task.state = state
            task.status_update_state = None
            task.latest_status = status
            task.statuses.append(status)
            task.resources_released = True
            fw.tasks.pop(task.task_id, None)
            if fw.partition_aware:
                fw.unreachable_tasks[task.task_id] = task
            else:
                fw.completed_tasks.append(task)
            fw.send({"type": "UPDATE", "update": {"status": status}})
        for fw in self.frameworks.values():
            fw.send({"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}})
        self.schedule_allocation()

    # ------------------------------------------------------------------ state.json

    def state_json(self, *, leader_info: dict | None = None, flags: dict | None = None) -> dict:
        info = leader_info or self.master_info()
        return {
            "version": VERSION,
            "git_sha": "localmesos",
            "git_tag": VERSION,
            "build_date": "",
            "build_time": self.start_time,
            "build_user": "localmesos",
            "start_time": self.start_time,
            "elected_time": self.elected_time,
            "id": self.id,
            "pid": f"master@{self.ip}:{self.port}",
            "hostname": self.hostname,
            "activated_slaves": sum(1 for a in self.agents.values() if a.connected),
            "deactivated_slaves": sum(1 for a in self.agents.values() if not a.connected),
            "unreachable_slaves": len(self.unreachable_agents),
            "leader": info["pid"],
            "leader_info": info,
            "log_dir": "",
            "flags": flags or {},
            "slaves": [self._agent_state(a) for a in self.agents.values()],
            "frameworks": [self._framework_state(f) for f in self.frameworks.values()],
            "completed_frameworks": [self._framework_state(f) for f in self.completed_frameworks],
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        }

    def _agent_state(self, a: Agent) -> dict:
        if a.static_state is None:
            reserved: dict[str, list[Resource]] = {}
            for r in a.total:
                if r.role != UNRESERVED:
                    reserved.setdefault(r.role, []).append(r)
            a.static_state = {
                "id": a.id,
                "pid": f"slave(1)@{a.ip}:{a.port}",
                "hostname": a.hostname,
                "port": a.port,
                "registered_time": a.registered_time,
                "resources": _state_sum(a.total),
                "reserved_resources": {k: _state_sum(v) for k, v in reserved.items()},
                "unreserved_resources": _state_sum([r for r in a.total if r.role == UNRESERVED]),
                "reserved_resources_full": {
                    k: [resource_to_json(r) for r in v] for k, v in reserved.items()
                },
                "attributes": attributes_state_json(a.attributes),
                "version": VERSION,
                "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
            }
        out = dict(a.static_state)
        out["used_resources"] = _state_sum(a.used)
        out["offered_resources"] = _state_sum(a.offered)
        out["active"] = a.connected
        return out

    def _framework_state(self, fw: Framework) -> dict:
        used = [r for t in fw.tasks.values() if not t.resources_released for r in t.resources]
        offered = [r for o in fw.offers.values() for r in o.resources]
        info = fw.info
        out = {
            "id": fw.id,
            "name": info.get("name", ""),
            "pid": "",
            "user": info.get("user", ""),
            "hostname": info.get("hostname", ""),
            "webui_url": info.get("webui_url", ""),
            "principal": info.get("principal", ""),
            "roles": fw.roles,
            "active": fw.connected,
            "connected": fw.connected,
            "recovered": fw.recovered,
            "checkpoint": bool(info.get("checkpoint", False)),
            "failover_timeout": fw.failover_timeout,
            "capabilities": sorted(c for c in fw.capabilities if c),
            "registered_time": fw.registered_time,
            "unregistered_time": fw.unregistered_time,
            "resources": _state_sum(used + offered),
            "used_resources": _state_sum(used),
            "offered_resources": _state_sum(offered),
            "tasks": [t.state_json() for t in fw.tasks.values()],
            "unreachable_tasks": [t.state_json() for t in fw.unreachable_tasks.values()],
            "completed_tasks": [t.state_json() for t in fw.completed_tasks],
            "offers": [
                {
                    "id": o.offer_id,
                    "framework_id": fw.id,
                    "slave_id": o.agent_id,
                    "resources": resources_state_json(o.resources),
                    "allocation_info": {"role": o.role},
                }
                for o in fw.offers.values()
            ],
            "executors": [],
        }
        if "MULTI_ROLE" not in fw.capabilities:
            out["role"] = fw.roles[0]
        if fw.reregistered_time:
            out["reregistered_time"] = fw.reregistered_time
        return out


# ---------------------------------------------------------------------- validation (pure)


_CALL_BODIES = {
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "KILL": "kill",
    "SHUTDOWN": "shutdown",
    "ACKNOWLEDGE": "acknowledge",
    "ACKNOWLEDGE_OPERATION_STATUS": "acknowledge_operation_status",
    "RECONCILE": "reconcile",
    "RECONCILE_OPERATIONS": "reconcile_operations",
    "MESSAGE": "message",
    "REQUEST": "request",
    "UPDATE_FRAMEWORK": "update_framework",
}
_CALL_TYPES = {"SUBSCRIBE", "TEARDOWN", "REVIVE", "SUPPRESS", "UNKNOWN", *_CALL_BODIES}


def validate_call(call: dict) -> str | None:
    """Mesos's ``validation::scheduler::call::validate`` (+ required proto fields); the 400 text."""
    prefix = "Failed to validate scheduler::Call: "
    kind = call.get("type")
    if kind is None:
        return prefix + "Expecting 'type' to be present"
    if kind not in _CALL_TYPES:
        return f"Failed to convert JSON into Call protobuf: unknown call type {kind!r}"
    if kind == "SUBSCRIBE":
        sub = call.get("subscribe")
        if not isinstance(sub, dict) or not isinstance(sub.get("framework_info"), dict):
            return prefix + "Expecting 'subscribe' to be present"
        info = sub["framework_info"]
        missing = [k for k in ("user", "name") if not isinstance(info.get(k), str)]
        if missing:
            return "Failed to convert JSON into Call protobuf: Missing required fields: " + (
                ", ".join(f"subscribe.framework_info.{k}" for k in missing)
            )
        if _value(info.get("id")) != _value(call.get("framework_id")):
            return prefix + "'framework_id' differs from 'subscribe.framework_info.id'"
        return None
    if not _value(call.get("framework_id")):
        return prefix + "Expecting 'framework_id' to be present"
    body_key = _CALL_BODIES.get(kind)
    if body_key is not None and not isinstance(call.get(body_key), dict):
        return prefix + f"Expecting '{body_key}' to be present"
    if kind == "KILL" and not _value(call["kill"].get("task_id")):
        return "Failed to convert JSON into Call protobuf: Missing required fields: kill.task_id"
    if kind == "ACKNOWLEDGE":
        ack = call["acknowledge"]
        missing = [k for k in ("agent_id", "task_id") if not _value(ack.get(k))]
        if "uuid" not in ack:
            missing.append("uuid")
        if missing:
            return "Failed to convert JSON into Call protobuf: Missing required fields: " + (
                ", ".join(f"acknowledge.{k}" for k in missing)
            )
        try:
            raw = base64.b64decode(ack["uuid"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            return (
                f"Failed to convert JSON into Call protobuf: 'uuid' {ack['uuid']!r} is not base64"
            )
        if len(raw) != 16:
            return prefix + f"Invalid UUID: {len(raw)} bytes instead of 16"
    missing = _missing_required(kind, call)
    if missing:
        return "Failed to convert JSON into Call protobuf: Missing required fields: " + ", ".join(
            missing
        )
    if kind == "UPDATE_FRAMEWORK":
        info = call["update_framework"].get("framework_info") or {}
        if _value(info.get("id")) != _value(call.get("framework_id")):
            return prefix + "'framework_id' differs from 'update_framework.framework_info.id'"
    return None


def _missing_required(kind: str, call: dict) -> list[str]:
    """Proto ``required`` fields the JSON lacks (Mesos rejects the whole call with 400)."""
    missing: list[str] = []
    if kind == "ACCEPT":
        body = call["accept"]
        for i, oid in enumerate(body.get("offer_ids") or []):
            if not _value(oid):
                missing.append(f"accept.offer_ids[{i}].value")
        for i, op in enumerate(body.get("operations") or []):
            if not isinstance(op, dict):
                missing.append(f"accept.operations[{i}]")
                continue
            tasks = (op.get("launch") or {}).get("task_infos") or []
            for j, t in enumerate(tasks if isinstance(tasks, list) else []):
                where = f"accept.operations[{i}].launch.task_infos[{j}]"
                if not isinstance(t, dict):
                    missing.append(where)
                    continue
                if not isinstance(t.get("name"), str):
                    missing.append(f"{where}.name")
                for key in ("task_id", "agent_id"):
                    if not _value(t.get(key)):
                        missing.append(f"{where}.{key}")
                for k, r in enumerate(t.get("resources") or []):
                    if not isinstance(r, dict) or "name" not in r or "type" not in r:
                        missing.append(f"{where}.resources[{k}].name/type")
    elif kind == "DECLINE":
        for i, oid in enumerate(call["decline"].get("offer_ids") or []):
            if not _value(oid):
                missing.append(f"decline.offer_ids[{i}].value")
    elif kind == "RECONCILE":
        for i, t in enumerate(call["reconcile"].get("tasks") or []):
            if not isinstance(t, dict) or not _value(t.get("task_id")):
                missing.append(f"reconcile.tasks[{i}].task_id")
    return missing


def validate_framework_info(info: dict) -> str | None:
    """The FrameworkInfo rules of Mesos's master validation; None when valid."""
    if not isinstance(info, dict):
        return "'framework_info' must be an object"
    caps = {c.get("type") for c in info.get("capabilities") or [] if isinstance(c, dict)}
    if "MULTI_ROLE" in caps:
        if "role" in info:
            return "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
        roles = info.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            return "'FrameworkInfo.roles' must be a list of strings"
        if len(set(roles)) != len(roles):
            return f"'FrameworkInfo.roles' contains duplicate entries: {roles}"
        for role in roles:
            err = _role_error(role)
            if err:
                return err
    else:
        if info.get("roles"):
            return (
                "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
            )
        role = info.get("role")
        if role is not None:
            err = _role_error(role)
            if err:
                return err
    return None


def _role_error(role: object) -> str | None:
    if not isinstance(role, str) or not role:
        return f"Role {role!r} must be a non-empty string"
    if role in (".", "..") or role.startswith("-") or any(c.isspace() for c in role):
        return (
            f"Role '{role}' is invalid: it must not be '.', '..', start with '-' or contain spaces"
        )
    return None


NAME_MAX = 255


def validate_id(value: object) -> str | None:
    """Mesos's ``common::validation::validateID`` for task ids; the error text or None.

    Whitespace is allowed; control characters and both path separators are not.
    """
    if not isinstance(value, str) or not value:
        return "ID must not be empty"
    if len(value) > NAME_MAX:
        return f"ID must not be greater than {NAME_MAX} characters"
    if value in (".", ".."):
        return f"'{value}' is disallowed"
    if any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in value):
        return f"'{value}' contains invalid characters"
    return None


def resources_from_task(info: dict) -> list[Resource]:
    raw = info.get("resources") or []
    return merge(resource_from_json(r) for r in raw)


def validate_task(
    t: dict, fw: Framework, agent: Agent, role: str, pool: list[Resource], seen: set[str]
) -> list[Resource]:
    """Mesos's task validation (subset); returns the task's resources or raises CallError."""
    if not isinstance(t, dict):
        raise CallError(400, "TaskInfo must be an object")
    tid = _value(t.get("task_id"))
    error = validate_id(tid)
    if error:
        raise CallError(400, error)
    if tid in fw.tasks or tid in fw.unreachable_tasks or tid in seen:
        raise CallError(400, f"Task has duplicate ID: {tid}")
    aid = _value(t.get("agent_id"))
    if aid != agent.id:
        raise CallError(400, f"Task uses invalid agent: {aid} (the offer is for agent {agent.id})")
    if "executor" in t:
        raise CallError(
            400, "localmesos runs command tasks only: custom executors are not supported"
        )
    if not isinstance(t.get("command"), dict):
        raise CallError(
            400,
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
        )
    if not t.get("name") and t.get("name") != "":
        raise CallError(400, "Task must have a name")
    raw = t.get("resources")
    if not raw:
        raise CallError(400, "Task uses no resources")
    try:
        res = merge(resource_from_json(r) for r in raw)
    except ResourceError as e:
        raise CallError(400, f"Task uses invalid resources: {e}") from None
    for r in raw:
        # A missing allocation_info is filled in with the offer's role (master.cpp
        # injectAllocationInfo); a different one is an error.
        alloc = (r.get("allocation_info") or {}).get("role")
        if alloc is not None and alloc != role:
            raise CallError(
                400, f"Task resource {r.get('name')} is allocated to role '{alloc}', not '{role}'"
            )
    for r in res:
        if r.role not in (UNRESERVED, role):
            raise CallError(
                400, f"Task resource {r.name}({r.role}) is not reserved for role '{role}'"
            )
        if r.name == "gpus" and not float(r.scalar or 0).is_integer():
            raise CallError(400, f"The 'gpus' resource must be an unsigned integer, not {r.scalar}")
    if not contains(pool, res):
        from mesosspawner.mesos.resources import format_resources

        raise CallError(
            400,
            f"Task uses more resources {format_resources(res)} than available "
            f"{format_resources(pool)}",
        )
    return res


def _state_sum(resources: Iterable[Resource]) -> dict:
    """``resources_state_json`` for long lists (every task of a framework), in one pass."""
    totals: dict[str, int] = {"cpus": 0, "mem": 0, "disk": 0, "gpus": 0}
    others: list[Resource] = []
    for r in resources:
        if r.scalar is not None:
            totals[r.name] = totals.get(r.name, 0) + round(r.scalar * 1000)
        else:
            others.append(r)
    out: dict = {k: v / 1000 for k, v in totals.items()}
    if others:
        out.update({k: v for k, v in resources_state_json(others).items() if k not in totals})
    return out


_SHARED_KINDS = ("cpus", "mem", "disk", "gpus")


def _share_vector(res: list[Resource]) -> tuple[float, ...]:
    return tuple(scalar(res, k) for k in _SHARED_KINDS)


class _Shares:
    """Dominant resource shares of roles and frameworks (tasks plus outstanding offers)
    against the connected agents' totals, updated as one allocation pass makes offers."""

    def __init__(self, master: Master) -> None:
        self.total = {k: 0.0 for k in _SHARED_KINDS}
        for agent in master.agents.values():
            if agent.connected:
                for k in _SHARED_KINDS:
                    self.total[k] += scalar(agent.total, k)
        self.roles: dict[str, dict[str, float]] = {}
        self.frameworks: dict[str, dict[str, float]] = {}
        for fw in master.frameworks.values():
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


def _ip_to_int(ip: str) -> int:
    """MasterInfo.ip: the IPv4 address as a uint32 in network byte order (as Mesos stores it)."""
    parts = [int(p) for p in ip.split(".")]
    return parts[0] | parts[1] << 8 | parts[2] << 16 | parts[3] << 24
