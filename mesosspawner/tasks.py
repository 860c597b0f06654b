"""What the framework and its spawners say about tasks: a task's record, a launch waiting for
an offer and the observer that hears how it goes, and the error a failed launch raises."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

from . import placement as plc
from .gpuqueue.policy import GpuClaim
from .mesos.resources import Resource
from .mesos.states import ACTIVE_STATES
from .taskinfo import TaskSpec

# What Mesos 1.9+ sets on the updates of tasks killed (or refused) by an agent being drained
# (DRAIN_AGENT); the agent's v0 name is REASON_SLAVE_DRAINING.
DRAINING_REASONS = frozenset({"REASON_AGENT_DRAINING", "REASON_SLAVE_DRAINING"})

# Launches of one request when offers turn out stale (each relaunch a new attempt), plus one
# after an executor registration timeout: how many one-time env-file URLs a spawn prepares.
OFFER_ATTEMPTS = 5
MAX_LAUNCHES = OFFER_ATTEMPTS + 1


class LaunchFailed(Exception):
    """A launch ended before the task ran; the message is written for the person waiting."""


@dataclass
class TaskRecord:
    """What the framework knows of one task: where it runs and its latest status."""

    task_id: str
    agent_id: str | None = None
    hostname: str | None = None
    ip: str | None = None
    ports: tuple[int, ...] = ()
    state: str = "TASK_STAGING"
    message: str = ""
    reason: str = ""
    updated: float = 0.0
    state_since: float = 0.0  # time.time() of the last change of state
    claimed: bool = True
    # A spawner stopped this task but no terminal state has arrived (its agent unreachable or
    # stopped): whenever the task shows up active again it is killed, never left unowned.
    kill_wanted: bool = False
    resources: tuple[Resource, ...] = ()
    # Mesos has told this hub process something about the task. False for a task known only
    # from a spawner's saved state (a restarted hub) until reconciliation answers: its
    # ``state`` is then what the hub last believed, not what Mesos says.
    reconciled: bool = True

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def describe(self) -> str:
        text = self.state.removeprefix("TASK_").lower()
        if self.reason in DRAINING_REASONS:
            # The operator drains the agent (DRAIN_AGENT): the executor's own words ("Command
            # exited with status 143") say nothing to the person whose notebook it was.
            where = self.hostname or self.agent_id or "its agent"
            return f"{text}: machine {where} is being drained for maintenance"
        if self.reason:
            text += f" ({self.reason.removeprefix('REASON_').lower()})"
        if self.message:
            text += f": {self.message}"
        return text


class LaunchObserver(Protocol):
    """What a waiting spawn hears of its launch (``progress.ProgressFeed`` tells the person)."""

    def queued(self, request: plc.Request) -> None: ...
    # ``why``: what it waits for, when it is not room on the cluster (its role's quota).
    def waiting(self, request: plc.Request, why: str | None = None) -> None: ...
    def accepted(self, placement: plc.Placement, task_id: str) -> None: ...
    def retry(self, why: str) -> None: ...
    def starting(self, record: TaskRecord) -> None: ...
    def in_queue(self, line: str) -> None: ...


class SilentObserver:
    """A LaunchObserver nobody listens to."""

    def queued(self, request: plc.Request) -> None:
        pass

    def waiting(self, request: plc.Request, why: str | None = None) -> None:
        pass

    def accepted(self, placement: plc.Placement, task_id: str) -> None:
        pass

    def retry(self, why: str) -> None:
        pass

    def starting(self, record: TaskRecord) -> None:
        pass

    def in_queue(self, line: str) -> None:
        pass


@dataclass
class LaunchRequest:
    """A notebook waiting for resources: plain data. The framework turns ``spec`` and the
    placement it wins into a TaskInfo (``taskinfo.build_task_info``); nothing calls back."""

    needs: plc.Request  # what the notebook needs from an offer
    spec: TaskSpec  # the task, but for what the offer decides
    observer: LaunchObserver = field(default_factory=SilentObserver)
    gpu: GpuClaim | None = None  # who asks and under which limits, for the GPU queue
    future: asyncio.Future = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    task_id: str | None = None
    attempts: int = 0
    registration_retries: int = 0
    queued_at: float = field(default_factory=time.monotonic)


__all__ = [
    "DRAINING_REASONS",
    "MAX_LAUNCHES",
    "OFFER_ATTEMPTS",
    "LaunchFailed",
    "LaunchObserver",
    "LaunchRequest",
    "SilentObserver",
    "TaskRecord",
]
