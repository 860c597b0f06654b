"""Culling that gives GPUs back: each GPU server's deadline, the warning before it, the cull.

Pure. A running GPU server (a ``Session``) has up to three deadlines:

* **idle**: its last activity plus its profile's idle limit (moves whenever it is used);
* **max-age**: its start plus its profile's maximum age (never moves);
* **reclaim**: while groups wait for GPUs of their own quota that others borrowed, the
  borrowed servers (``quotas.borrowed``) go first, at their last activity plus the shorter
  ``reclaim_idle_seconds``; only as many as are owed, those idle longest first. An active
  borrowed server is never taken back unless the admin opts in (``reclaim_active``), and then
  only after the same warning.

Nobody loses a server without a warning: the person is warned ``warning_seconds`` before the
deadline, and a cull never comes sooner than ``warning_seconds`` after the warning (a deadline
that arrives sooner is postponed). A warning whose deadline moves away (the server was used
again, the owners stopped waiting) is withdrawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .policy import QueuePolicy, Session, Ticket
from .quotas import borrowed, owed

IDLE, MAX_AGE, RECLAIM = "idle", "max-age", "reclaim"
WARN, CULL, CLEAR = "warn", "cull", "clear"


def duration(seconds: float) -> str:
    """A limit in words: "45 s", "30 min", "8 h", "1 h 30 min"."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h" + (f" {rest} min" if rest else "")


@dataclass(frozen=True)
class Deadline:
    """When a session is to be culled if nothing changes, and why (for the person)."""

    key: str
    at: float
    kind: str  # IDLE | MAX_AGE | RECLAIM
    why: str


@dataclass(frozen=True)
class Action:
    """What to do now: ``warn`` the person (the cull comes at ``at``), ``cull`` the session,
    or ``clear`` a warning that no longer holds."""

    key: str
    kind: str  # WARN | CULL | CLEAR
    at: float
    why: str
    deadline_kind: str = ""


def deadlines(
    sessions: Sequence[Session],
    tickets: Sequence[Ticket],
    policy: QueuePolicy,
    capacity: int | None,
    now: float,
) -> dict[str, Deadline]:
    """The nearest deadline of every session that has one."""
    out: dict[str, Deadline] = {}

    def offer(d: Deadline) -> None:
        if d.key not in out or d.at < out[d.key].at:
            out[d.key] = d

    for s in sessions:
        if s.idle_limit:
            offer(
                Deadline(
                    s.key,
                    s.last_activity + s.idle_limit,
                    IDLE,
                    f"it has not been used for {duration(max(0.0, now - s.last_activity))};"
                    f" GPU servers of profile {s.profile or 'default'} are stopped after"
                    f" {duration(s.idle_limit)} unused",
                )
            )
        if s.max_age:
            offer(
                Deadline(
                    s.key,
                    s.started + s.max_age,
                    MAX_AGE,
                    f"GPU servers of profile {s.profile or 'default'} run at most"
                    f" {duration(s.max_age)}",
                )
            )
    for d in reclaims(sessions, tickets, policy, capacity, now):
        offer(d)
    return out


def reclaims(
    sessions: Sequence[Session],
    tickets: Sequence[Ticket],
    policy: QueuePolicy,
    capacity: int | None,
    now: float,
) -> list[Deadline]:
    """Reclaim deadlines of the borrowed sessions to give back (see the module docstring)."""
    due = owed(tickets, sessions, policy, capacity)
    if due <= 0:
        return []
    lent = borrowed(sessions, policy)
    if not policy.reclaim_active:
        # Only idle servers go, so pick among those idle longest.
        lent.sort(key=lambda s: (s.last_activity, s.started, s.key))
    else:
        # Active ones may go too: the most recently started first (the least work lost).
        lent.sort(key=lambda s: (-s.started, s.key))
    out = []
    for s in lent:
        if due <= 0:
            break
        due -= s.gpus
        at = s.last_activity + policy.reclaim_idle_seconds
        if policy.reclaim_active:
            at = min(at, now)
        out.append(
            Deadline(
                s.key,
                at,
                RECLAIM,
                f"its GPU is borrowed from another group's quota and that group is waiting"
                f" for it; borrowed GPU servers unused for {duration(policy.reclaim_idle_seconds)}"
                " are given back"
                if not policy.reclaim_active
                else "its GPU is borrowed from another group's quota and that group is waiting"
                " for it",
            )
        )
    return out


def actions(
    due: Mapping[str, Deadline],
    warned: Mapping[str, float],
    policy: QueuePolicy,
    now: float,
) -> list[Action]:
    """What to do at ``now`` given the sessions' deadlines and when each was warned."""
    out = []
    for key, d in sorted(due.items()):
        cull_at = d.at
        if key in warned:
            cull_at = max(cull_at, warned[key] + policy.warning_seconds)
            if d.at > now + policy.warning_seconds:
                out.append(Action(key, CLEAR, d.at, d.why, d.kind))
            elif now >= cull_at:
                out.append(Action(key, CULL, cull_at, d.why, d.kind))
            continue
        if now >= d.at - policy.warning_seconds:
            out.append(Action(key, WARN, max(d.at, now + policy.warning_seconds), d.why, d.kind))
    for key in sorted(set(warned) - set(due)):
        out.append(Action(key, CLEAR, now, "", ""))
    return out
