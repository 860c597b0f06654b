"""Quotas: who may take a GPU now, who waits, and which request is refused outright.

Pure. The rules, in the order they are checked:

1. **A person's quota is a hard ceiling.** A request that would take someone past it, counting
   what they hold and what they already wait for, is refused at once, naming the quota.
   So is a request bigger than its group's limit: it could never start.
2. **A group's limit is a hard ceiling too**, borrowing included: the group's next request
   waits while its members hold the limit.
3. **A group's quota is its own.** Within its quota a group's request starts as soon as a GPU
   is free.
4. **Beyond its quota a group borrows** (if the admin allows borrowing) only GPUs no other group
   needs: each other group is counted with what it holds or, while it waits, its whole quota.
   A group without a quota lives on borrowed GPUs only. A borrowed server is the first to go
   at its idle deadline once the owners ask for their quota back (``culling``).
5. **Strict order.** Requests are admitted in queue order; once one that may start finds no
   free GPU, the ones behind it wait too (a one-GPU request never jumps a two-GPU one and
   starves it). A request held back by a quota does not hold up the others.

``capacity``: the GPUs of the cluster (None when not known yet: then only the quotas count,
and offers decide).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .policy import QueuePolicy, Session, Ticket

START, NEXT, HELD = "start", "next", "held"


def _gpus(n: int) -> str:
    return f"{n} GPU{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class Verdict:
    """What a waiting ticket may do now: ``start`` (a GPU is free for it), ``next`` (it goes
    as soon as one frees up), ``held`` (a quota holds it back; ``why`` says which)."""

    key: str
    status: str
    why: str = ""
    borrowing: bool = False  # it would take GPUs beyond its group's quota


@dataclass
class Holdings:
    """GPUs held per user and per group (mutable: the admission walk adds what it starts)."""

    by_user: Counter
    by_group: Counter

    @classmethod
    def of(cls, sessions: Iterable[Session]) -> Holdings:
        by_user: Counter = Counter()
        by_group: Counter = Counter()
        for s in sessions:
            by_user[s.user] += s.gpus
            by_group[s.group] += s.gpus
        return cls(by_user, by_group)

    @property
    def total(self) -> int:
        return sum(self.by_group.values())

    def add(self, user: str, group: str, gpus: int) -> None:
        self.by_user[user] += gpus
        self.by_group[group] += gpus


def refusal(
    ticket: Ticket,
    sessions: Sequence[Session],
    waiting: Sequence[Ticket],
    policy: QueuePolicy,
) -> str | None:
    """Why ``ticket`` must fail at once (rule 1), for the person; None if it may queue.

    ``waiting``: the other tickets already in the queue (the person's own count too)."""
    quota = policy.quota_of(ticket.user)
    if quota is not None:
        held = sum(s.gpus for s in sessions if s.user == ticket.user)
        asked = sum(t.gpus for t in waiting if t.user == ticket.user and t.key != ticket.key)
        if held + asked + ticket.gpus > quota:
            setting = (
                f"gpu_user_quotas[{ticket.user!r}]"
                if ticket.user in policy.user_quotas
                else "gpu_user_quota"
            )
            have = []
            if held:
                have.append(f"you hold {_gpus(held)}")
            if asked:
                have.append(f"you already wait for {_gpus(asked)}")
            now = f" and {' and '.join(have)}" if have else ""
            return (
                f"Your GPU quota is {_gpus(quota)}{now}; this server asks for "
                f"{_gpus(ticket.gpus)}. Stop one of your GPU servers first, or ask an admin "
                f"to raise your quota (c.MesosSpawner.{setting})"
            )
    limit = policy.group(ticket.group).limit
    if limit is not None and ticket.gpus > limit:
        return (
            f"Your group {ticket.group!r} may hold at most {_gpus(limit)} at once (its GPU "
            f"limit, c.MesosSpawner.gpu_groups[{ticket.group!r}]['limit']); this server asks "
            f"for {_gpus(ticket.gpus)}"
        )
    return None


def _claimed(
    group: str, holdings: Holdings, asking: Counter, policy: QueuePolicy, groups: Iterable[str]
) -> int:
    """GPUs promised to the groups other than ``group``: each holds what it holds or, while it
    waits for more, its whole quota."""
    total = 0
    for other in groups:
        if other == group:
            continue
        held = holdings.by_group.get(other, 0)
        quota = policy.group(other).quota or 0
        total += max(held, min(quota, held + asking.get(other, 0)))
    return total


def admission(
    tickets: Sequence[Ticket],
    sessions: Sequence[Session],
    policy: QueuePolicy,
    capacity: int | None,
) -> list[Verdict]:
    """A verdict for each ticket, walking them in queue order (rules 2 to 5)."""
    holdings = Holdings.of(sessions)
    asking: Counter = Counter()
    for t in tickets:
        asking[t.group] += t.gpus
    groups = {g.name for g in policy.groups} | set(holdings.by_group) | set(asking)
    blocked = False
    out = []
    for t in tickets:
        group = policy.group(t.group)
        held_g = holdings.by_group.get(t.group, 0)
        user_quota = policy.quota_of(t.user)
        if user_quota is not None and holdings.by_user.get(t.user, 0) + t.gpus > user_quota:
            out.append(Verdict(t.key, HELD, f"you hold your quota of {_gpus(user_quota)}"))
            continue
        if group.limit is not None and held_g + t.gpus > group.limit:
            out.append(
                Verdict(
                    t.key,
                    HELD,
                    f"group {t.group} holds its limit of {_gpus(group.limit)}",
                )
            )
            continue
        quota = group.quota or 0
        borrowing = held_g + t.gpus > quota
        if borrowing:
            if group.quota is not None and not policy.borrowing:
                out.append(
                    Verdict(t.key, HELD, f"group {t.group} uses its quota of {_gpus(quota)}")
                )
                continue
            if capacity is not None:
                claimed = _claimed(t.group, holdings, asking, policy, groups)
                others = holdings.total - held_g
                # Held back only by what others may claim (their idle quota, while they wait);
                # GPUs merely in use make it wait in line like anyone (rule 5).
                if t.gpus > capacity - claimed - held_g and claimed > others:
                    why = (
                        f"group {t.group} uses its quota of {_gpus(quota)} and no other "
                        "group's is free to borrow"
                        if group.quota
                        else f"group {t.group} has no GPU quota of its own and none is free "
                        "to borrow"
                    )
                    out.append(Verdict(t.key, HELD, why, borrowing=True))
                    continue
        free = None if capacity is None else capacity - holdings.total
        if blocked or (free is not None and t.gpus > free):
            blocked = True
            out.append(Verdict(t.key, NEXT, "every GPU is in use", borrowing=borrowing))
            continue
        holdings.add(t.user, t.group, t.gpus)
        asking[t.group] -= t.gpus
        out.append(Verdict(t.key, START, borrowing=borrowing))
    return out


def borrowed(sessions: Sequence[Session], policy: QueuePolicy) -> list[Session]:
    """The sessions that hold GPUs beyond their group's quota: in each group, the most recently
    started ones past the quota (what a group holds within its quota is its own)."""
    by_group: dict[str, list[Session]] = {}
    for s in sessions:
        by_group.setdefault(s.group, []).append(s)
    out = []
    for group, members in by_group.items():
        quota = policy.group(group).quota or 0
        members.sort(key=lambda s: (s.started, s.key))
        used = 0
        for s in members:
            used += s.gpus
            if used > quota:
                out.append(s)
    return out


def owed(
    tickets: Sequence[Ticket],
    sessions: Sequence[Session],
    policy: QueuePolicy,
    capacity: int | None,
) -> int:
    """GPUs that waiting groups are owed within their quotas but cannot get, because other
    groups borrowed them: how many borrowed GPUs must be given back."""
    if capacity is None:
        return 0
    holdings = Holdings.of(sessions)
    want: Counter = Counter()
    for t in tickets:
        want[t.group] += t.gpus
    due = 0
    for group, wanted in want.items():
        quota = policy.group(group).quota or 0
        due += max(0, min(wanted, quota - holdings.by_group.get(group, 0)))
    free = capacity - holdings.total
    lent = sum(s.gpus for s in borrowed(sessions, policy))
    return max(0, min(due - free, lent))
