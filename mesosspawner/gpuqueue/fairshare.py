"""Usage decayed over a half-life, and the fair-share order of waiting GPU requests.

Pure. Usage is GPU-seconds, each second counting less as it ages: a second used one half-life
ago counts half (Slurm's PriorityDecayHalfLife). A group's priority is Slurm's fair-share
factor F = 2^(-U/S), with U its part of all usage and S its part of all shares; inside a group,
a person's factor is the same with their part of the group's usage and shares. The order is
"fair tree": the group first (the one furthest below its share), then the person inside it,
then who asked first. With no usage anywhere every factor is 1, and the order is first come,
first served.

``charge`` must be called before what people hold changes (and may be called any time in
between): it brings every usage record up to ``now`` assuming what they held since the last
call stayed the same.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .policy import QueuePolicy, Session, Ticket

UsageKey = tuple[str, str]  # (group, user)


@dataclass(frozen=True)
class Usage:
    """Decayed GPU-seconds as of ``at``."""

    value: float
    at: float


def decay(value: float, seconds: float, half_life: float) -> float:
    """``value`` after ``seconds`` of decay."""
    if seconds <= 0:
        return value
    return value * math.pow(0.5, seconds / half_life)


def accrued(usage: Usage, gpus: float, now: float, half_life: float) -> Usage:
    """``usage`` brought to ``now``, holding ``gpus`` all along: dU/dt = gpus - λU."""
    dt = now - usage.at
    if dt <= 0:
        return usage
    rate = math.log(2) / half_life
    keep = math.exp(-rate * dt)
    return Usage(usage.value * keep + gpus * (1.0 - keep) / rate, now)


def holding(sessions: Iterable[Session]) -> dict[UsageKey, int]:
    """GPUs each (group, user) holds now."""
    out: dict[UsageKey, int] = defaultdict(int)
    for s in sessions:
        out[(s.group, s.user)] += s.gpus
    return dict(out)


def charge(
    history: Mapping[UsageKey, Usage],
    sessions: Sequence[Session],
    now: float,
    half_life: float,
) -> dict[UsageKey, Usage]:
    """Every record brought to ``now``, charging what ``sessions`` held since the last charge
    (a person new to the records from their session's start; records that decayed below a
    GPU-millisecond are dropped). Call it before what people hold changes."""
    held = holding(sessions)
    last = max((u.at for u in history.values()), default=None)
    out: dict[UsageKey, Usage] = {}
    for key in set(history) | set(held):
        past = history.get(key)
        if past is None:
            start = min(s.started for s in sessions if (s.group, s.user) == key)
            past = Usage(0.0, min(now, start if last is None else max(start, last)))
        usage = accrued(past, held.get(key, 0), now, half_life)
        if usage.value > 1e-3 or held.get(key, 0):
            out[key] = usage
    return out


def usage_now(
    history: Mapping[UsageKey, Usage], sessions: Sequence[Session], now: float, half_life: float
) -> dict[UsageKey, float]:
    """Each (group, user)'s decayed usage at ``now``, running sessions charged up to ``now``."""
    return {k: u.value for k, u in charge(history, sessions, now, half_life).items()}


@dataclass(frozen=True)
class Standing:
    """A person's place in the fair-share order: their group's factor, then their own."""

    group_factor: float
    user_factor: float
    group_usage: float  # decayed GPU-seconds
    user_usage: float


def factor(usage_part: float, share_part: float) -> float:
    """Slurm's fair-share factor 2^(-U/S): 1 unused, 0.5 used exactly its share, -> 0 beyond."""
    if share_part <= 0:
        return 0.0
    return math.pow(2.0, -usage_part / share_part)


def group_factors(
    usage: Mapping[UsageKey, float], policy: QueuePolicy, also: Iterable[str] = ()
) -> dict[str, float]:
    """Each group's factor: every configured group, every group with usage, and ``also``."""
    group_usage: dict[str, float] = defaultdict(float)
    for (group, _), value in usage.items():
        group_usage[group] += value
    groups = {g.name for g in policy.groups} | set(group_usage) | set(also)
    shares = {g: policy.group(g).share for g in groups}
    total_shares = sum(shares.values()) or 1.0
    total_usage = sum(group_usage.values())
    return {
        g: factor(
            group_usage.get(g, 0.0) / total_usage if total_usage > 0 else 0.0,
            shares[g] / total_shares,
        )
        for g in groups
    }


def standings(
    usage: Mapping[UsageKey, float], people: Iterable[UsageKey], policy: QueuePolicy
) -> dict[UsageKey, Standing]:
    """The standing of each (group, user) in ``people``, against everyone in ``usage``."""
    people = list(people)
    group_usage: dict[str, float] = defaultdict(float)
    members: dict[str, set[str]] = defaultdict(set)
    for (group, user), value in usage.items():
        group_usage[group] += value
        members[group].add(user)
    for group, user in people:
        members[group].add(user)
    groups = group_factors(usage, policy, {g for g, _ in people})
    out = {}
    for group, user in people:
        g_usage = group_usage.get(group, 0.0)
        u_shares = sum(policy.user_share(m) for m in members[group]) or 1.0
        u_usage = usage.get((group, user), 0.0)
        u_part = u_usage / g_usage if g_usage > 0 else 0.0
        out[(group, user)] = Standing(
            groups[group],
            factor(u_part, policy.user_share(user) / u_shares),
            g_usage,
            u_usage,
        )
    return out


def order(
    tickets: Iterable[Ticket], usage: Mapping[UsageKey, float], policy: QueuePolicy
) -> list[Ticket]:
    """The tickets in the order they should get GPUs (see the module docstring); ``fifo``
    policies keep arrival order."""
    tickets = list(tickets)
    if policy.order == "fifo":
        return sorted(tickets, key=lambda t: (t.since, t.key))
    stand = standings(usage, {(t.group, t.user) for t in tickets}, policy)
    return sorted(tickets, key=lambda t: rank(t, stand[(t.group, t.user)]))


def rank(ticket: Ticket, standing: Standing) -> tuple:
    """The fair-share sort key of ``ticket``: its group's factor, its person's, then arrival.
    Factors are rounded so that float noise never outranks who asked first."""
    return (
        -round(standing.group_factor, 9),
        -round(standing.user_factor, 9),
        ticket.since,
        ticket.key,
    )
