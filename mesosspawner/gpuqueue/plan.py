"""One look at the GPU queue: the whole decision at one instant, as plain data.

Pure. ``plan()`` is the one entry point both the hub (``hubqueue.GpuQueue``) and the benchmark
(``benchmarks/bench_queue.py``) call: usage charged up to ``now``, the fair-share order,
each ticket's verdict (start, next, held by a quota), its position and estimated start, every
server's cull deadline, and the warnings and culls due now. Whoever calls it applies the
result: the hub launches and kills through Mesos, the benchmark moves its simulated clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import culling, eta, fairshare, quotas
from .policy import QueuePolicy, Session, Ticket


@dataclass(frozen=True)
class Plan:
    now: float
    usage: dict[fairshare.UsageKey, fairshare.Usage]  # charged up to ``now``: keep it
    order: list[Ticket]  # the queue, first in line first
    verdicts: dict[str, quotas.Verdict]
    starts: dict[str, float | None]  # estimated start time per ticket (None: unknown)
    deadlines: dict[str, culling.Deadline]
    actions: list[culling.Action]
    standings: dict[fairshare.UsageKey, fairshare.Standing] = field(default_factory=dict)

    def startable(self) -> list[Ticket]:
        """The tickets that may take a GPU now, in queue order."""
        return [t for t in self.order if self.verdicts[t.key].status == quotas.START]

    def position(self, key: str) -> int | None:
        """1 for the first in line."""
        for i, t in enumerate(self.order, 1):
            if t.key == key:
                return i
        return None

    def wait(self, key: str) -> float | None:
        """Estimated seconds until ``key`` starts."""
        start = self.starts.get(key)
        return None if start is None else max(0.0, start - self.now)

    def line(self, key: str) -> str:
        """The person's line: "2nd in the GPU queue, about 12 min"."""
        verdict = self.verdicts.get(key)
        held = verdict.why if verdict is not None and verdict.status == quotas.HELD else ""
        return eta.queue_line(self.position(key) or 0, self.wait(key), held)


def plan(
    policy: QueuePolicy,
    tickets: Sequence[Ticket],
    sessions: Sequence[Session],
    history: Mapping[fairshare.UsageKey, fairshare.Usage],
    turnover: eta.Turnover,
    warned: Mapping[str, float],
    capacity: int | None,
    now: float,
    *,
    arrivals: eta.Arrivals | None = None,
    estimate: bool = True,
) -> Plan:
    """The queue at ``now``. ``history``: usage as last charged (what ``sessions`` held since
    then is charged now); ``warned``: when each session's person was warned of a cull;
    ``capacity``: the cluster's GPUs (None: unknown); ``arrivals``: recent requests (the ETA
    expects more like them). ``estimate=False`` skips the ETAs."""
    usage = fairshare.charge(history, sessions, now, policy.half_life)
    values = {k: u.value for k, u in usage.items()}
    ordered = fairshare.order(tickets, values, policy)
    verdicts = {v.key: v for v in quotas.admission(ordered, sessions, policy, capacity)}
    due = culling.deadlines(sessions, ordered, policy, capacity, now)
    acts = culling.actions(due, warned, policy, now)
    people = {(t.group, t.user) for t in ordered} | {(s.group, s.user) for s in sessions}
    stand = fairshare.standings(values, people, policy)
    starts: dict[str, float | None] = {}
    if estimate and ordered:
        starts = eta.forecast(
            ordered,
            sessions,
            policy,
            capacity,
            now,
            turnover,
            due,
            arrivals=arrivals,
            standings=stand,
            group_factors=fairshare.group_factors(
                values, policy, {a.group for a in arrivals.recent} if arrivals else ()
            ),
        )
    return Plan(
        now=now,
        usage=usage,
        order=ordered,
        verdicts=verdicts,
        starts=starts,
        deadlines=due,
        actions=acts,
        standings=stand,
    )
