"""The master's records: tasks, offers, filters, frameworks and agents, and how to reach them.

Plain state with the bookkeeping that keeps it consistent (an agent's used / offered /
available resources); the rules that change it live in ``master.py`` and ``allocator.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
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
    merge,
    resource_from_json,
    resource_to_json,
    scalar,
    subtract,
)

from ..mesos.states import TERMINAL_STATES as TERMINAL

log = logging.getLogger("mesosspawner.localmesos.master")

VERSION = "1.11.0"
MAX_COMPLETED_TASKS = 1000


class Stream(Protocol):
    def send(self, event: dict) -> None: ...
    def close(self) -> None: ...


class AgentLink(Protocol):
    """How the master reaches an agent (in-process object or remote HTTP)."""

    def launch(self, framework: dict, task: dict) -> None: ...
    def kill(self, framework_id: str, task_id: str, grace: float) -> None: ...
    def acknowledge(self, framework_id: str, task_id: str, uuid: str) -> None: ...
    def shutdown_framework(self, framework_id: str) -> None: ...


def is_terminal(state: str) -> bool:
    return state in TERMINAL


def master_status(
    task_id: str,
    state: str,
    reason: str,
    message: str,
    agent_id: str | None = None,
    **extra: object,
) -> dict:
    """A TaskStatus the master writes itself: ``SOURCE_MASTER`` and no ``uuid``, so the
    framework must not acknowledge it (only agent updates carry one)."""
    status: dict = {"task_id": {"value": task_id}}
    if agent_id:
        status["agent_id"] = {"value": agent_id}
    status.update(
        state=state, source="SOURCE_MASTER", reason=reason, message=message, timestamp=time.time()
    )
    status.update(extra)
    return status


def reconcile_status(task: Task) -> dict:
    """RECONCILE of a task the master knows: its latest status, re-sent by the master."""
    status = dict(task.latest_status or {})
    status.pop("uuid", None)
    status.update(
        master_status(
            task.task_id,
            # The state of the update in flight, as Mesos reports it, else the latest.
            task.status_update_state or task.state,
            "REASON_RECONCILIATION",
            "Reconciliation: Latest task state",
            task.agent_id,
        )
    )
    return status


def update_event(status: dict) -> dict:
    return {"type": "UPDATE", "update": {"status": status}}


def resources_from_task(info: dict) -> list[Resource]:
    return merge(resource_from_json(r) for r in info.get("resources") or [])


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
    # state.json of a task changes only with its state or statuses: ``state_json.task_state``
    # caches it here for 10,000 tasks.
    static_json: dict | None = None
    cached_json: dict | None = None
    cached_json_key: tuple | None = None

    def record_master_status(self, status: dict) -> None:
        """A state the master decided (agent lost or unreachable): no update is in flight."""
        self.state = status["state"]
        self.status_update_state = None
        self.latest_status = status
        self.statuses.append(status)


@dataclass
class OfferRecord:
    """An outstanding offer, as the master tracks it (``mesos.events.Offer`` is the framework's)."""

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
        # The operator's DEACTIVATE_AGENT or DRAIN_AGENT: no offers. ``drain`` is the DrainInfo
        # (``{"state": "DRAINING" | "DRAINED", "config": {...}}``) while it drains or is drained.
        self.deactivated = False
        self.drain: dict | None = None

    def refresh_totals(self) -> None:
        """``total`` changed (a dynamic reservation made or removed): recompute what derives
        from it."""
        self.total = merge(self.total)
        self.has_gpus = scalar(self.total, "gpus") > 0
        self.static_state = None
        self._available = None

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
