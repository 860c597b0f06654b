"""Where a waiting GPU request stands and when it should start: "3rd in the GPU queue, about
12 min".

Pure. The estimate replays the queue's own admission rules (``quotas.admission``) over the
predicted ends of the running GPU servers:

* a server ends at its cull deadline (``culling.deadlines``: idle, max-age or reclaim) if it
  looks idle now (no activity for ``quiet_after``), and never after its max-age;
* otherwise it ends after the typical remaining time of servers that already ran as long as it
  has: the observed turnover, i.e. the lengths of recently ended GPU sessions (their median
  residual life), bounded by its deadlines;
* without enough observed sessions, an active server ends at its idle deadline (the earliest
  the culler could take it), else nobody can say.

At each predicted end the freed GPUs go to the queue in order, under the same quotas as the
real queue; a request started in the replay holds its GPUs for a typical session length. The
answer is the time each request starts in the replay, or None when no end can be predicted.
"""

from __future__ import annotations

import functools
import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .culling import Deadline, duration
from .fairshare import Standing, rank
from .policy import QueuePolicy, Session, Ticket
from .quotas import START, admission

# Fewer ended sessions than this, and the turnover is not used; fewer in use at an age than
# MIN_CONDITIONAL, and those that lasted that long answer instead.
MIN_SAMPLES = 8
MIN_CONDITIONAL = 5
# Scenarios replayed for one estimate, and the stride that spreads quantiles over servers.
SCENARIOS = 15
STRIDE = 7
STRIDE_NEWCOMERS = 4
# Arrivals over this window make a group's observed rate; at most this many newcomers per
# group are imagined in one replay.
ARRIVAL_WINDOW = 3600.0
MAX_NEWCOMERS = 60
# How many recent session lengths are kept for the estimate.
KEEP_LENGTHS = 500


@dataclass(frozen=True)
class Turnover:
    """What recent GPU sessions did: each ended one as (seconds active, seconds long), each
    running one as (seconds active so far, age). Active = until its last reported activity.

    ``residual`` answers "how much longer will a session that is still in use at this age
    run?" from the sessions that were still in use at that age: a Kaplan-Meier estimate, in
    which the running sessions count as lasting at least their age (without them the long
    sessions, still running, would be missing and every estimate too short)."""

    ended: tuple[tuple[float, float], ...] = ()
    running: tuple[tuple[float, float], ...] = ()

    @classmethod
    def of(
        cls,
        ended: Sequence[tuple[float, float] | float],
        running: Sequence[tuple[float, float]] = (),
    ) -> Turnover:
        pairs = []
        for item in list(ended)[-KEEP_LENGTHS:]:
            active, length = (item, item) if isinstance(item, int | float) else item
            if length >= 0:
                pairs.append((max(0.0, min(float(active), float(length))), float(length)))
        return cls(tuple(pairs), tuple((float(a), float(t)) for a, t in running))

    def with_running(self, running: Sequence[tuple[float, float]]) -> Turnover:
        return Turnover(self.ended, tuple((float(a), float(t)) for a, t in running))

    @property
    def known(self) -> bool:
        return len(self.ended) >= MIN_SAMPLES

    def residual(self, age: float, q: float = 0.5) -> float | None:
        """The ``q`` quantile of the remaining time of a session ``age`` seconds old and in
        use now (None while too few sessions ended to say)."""
        if not self.known:
            return None
        times, values, horizon = _remaining(self, age)
        if not times:
            # Older than every session seen in use: assume as long again as a typical one.
            return self.residual(0.0, q) if age > 0 else None
        target = 1.0 - q
        for t, v in zip(times, values, strict=True):
            if v <= target + 1e-12:
                return t
        # The curve never falls that far: the sessions that would say so still run. At least
        # as long as the longest of them has.
        return horizon


@functools.lru_cache(maxsize=4096)
def _remaining(
    turnover: Turnover, age: float
) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    """Kaplan-Meier curve (times from ``age``, survival) of the sessions in use at ``age``,
    and the longest time seen (ended or still running)."""
    events = [(length - age, 1) for active, length in turnover.ended if active > age]
    if len(events) < MIN_CONDITIONAL:
        # Too few were in use that long: those that merely lasted that long.
        events = [(length - age, 1) for _, length in turnover.ended if length > age]
    events += [(t - age, 0) for active, t in turnover.running if active > age]
    events.sort(key=lambda e: (e[0], -e[1]))  # an end at t comes before a censoring at t
    at_risk = len(events)
    survival = 1.0
    times: list[float] = []
    values: list[float] = []
    i = 0
    while i < len(events):
        t = events[i][0]
        ended = censored = 0
        while i < len(events) and events[i][0] == t:
            ended += events[i][1]
            censored += 1 - events[i][1]
            i += 1
        if ended:
            survival *= 1.0 - ended / at_risk
            times.append(max(0.0, t))
            values.append(survival)
        at_risk -= ended + censored
    horizon = max((max(0.0, e[0]) for e in events), default=0.0)
    return tuple(times), tuple(values), horizon


def predicted_end(
    session: Session,
    now: float,
    policy: QueuePolicy,
    turnover: Turnover,
    deadline: Deadline | None,
    q: float = 0.5,
) -> float | None:
    """When ``session`` ends in the scenario of quantile ``q`` (see the module docstring);
    None if unknown."""
    cap = session.started + session.max_age if session.max_age else None
    if deadline is not None:
        cap = deadline.at if cap is None else min(cap, deadline.at)
    idle = now - session.last_activity >= policy.quiet_after
    if idle and deadline is not None:
        return max(now, cap if cap is not None else deadline.at)
    rest = turnover.residual(now - session.started, q)
    if rest is not None:
        end = now + rest
        return max(now, end if cap is None else min(end, cap))
    if session.idle_limit:
        end = max(now, session.last_activity + session.idle_limit)
        return end if cap is None else max(now, min(end, cap))
    return None if cap is None else max(now, cap)


@dataclass(frozen=True)
class Arrival:
    """A request that joined the queue: when, from which group, and the person's user factor
    then (``fairshare.Standing.user_factor``): where newcomers of that group tend to stand."""

    at: float
    group: str
    user_factor: float = 1.0


@dataclass(frozen=True)
class Arrivals:
    """Recent arrivals, the other half of the observed turnover: under fair share, people who
    ask later may go first, so an estimate that ignored them would be too short."""

    recent: tuple[Arrival, ...] = ()

    @classmethod
    def of(cls, recent: Sequence[Arrival], now: float) -> Arrivals:
        return cls(tuple(a for a in recent if now - a.at <= ARRIVAL_WINDOW))

    def rate(self, group: str, now: float) -> float:
        """Arrivals per second of ``group`` over the last ``ARRIVAL_WINDOW``."""
        seen = [a for a in self.recent if a.group == group and 0 <= now - a.at <= ARRIVAL_WINDOW]
        return len(seen) / ARRIVAL_WINDOW

    def factor(self, group: str, q: float) -> float:
        """The ``q`` quantile of the user factors ``group``'s newcomers had."""
        factors = sorted(a.user_factor for a in self.recent if a.group == group)
        if not factors:
            return 1.0
        return factors[min(len(factors) - 1, int(q * len(factors)))]


def _newcomers(
    tickets: Sequence[Ticket],
    policy: QueuePolicy,
    now: float,
    arrivals: Arrivals,
    group_factors: Mapping[str, float],
    phase: float,
    spread: Callable[[int], float],
) -> list[tuple[tuple, Ticket]]:
    """(rank, ticket) of the requests expected to join while ``tickets`` wait, evenly spaced
    at each group's observed rate (``phase`` in [0, 1) shifts them between scenarios); the
    k-th newcomer stands where the ``spread(k)`` quantile of its group's newcomers stood."""
    if policy.order != "fairshare" or not tickets:
        return []
    horizon = max((t.gives_up for t in tickets if t.gives_up is not None), default=now)
    horizon = max(horizon, now + ARRIVAL_WINDOW)
    patience = [t.gives_up - t.since for t in tickets if t.gives_up is not None]
    typical = tickets[len(tickets) // 2]
    out = []
    for group in sorted({a.group for a in arrivals.recent}):
        rate = arrivals.rate(group, now)
        if rate <= 0:
            continue
        for k in range(MAX_NEWCOMERS):
            user_factor = arrivals.factor(group, spread(k))
            stand = Standing(group_factors.get(group, 1.0), user_factor, 0, 0)
            at = now + (k + phase) / rate
            if at > horizon:
                break
            key = f"~{group}~{k}"
            ticket = Ticket(
                key,
                key,
                group,
                1,
                since=at,
                idle_limit=typical.idle_limit,
                max_age=typical.max_age,
                gives_up=at + sorted(patience)[len(patience) // 2] if patience else None,
            )
            out.append((rank(ticket, stand), ticket))
    return out


def _replay(
    tickets: Sequence[Ticket],
    sessions: Sequence[Session],
    policy: QueuePolicy,
    capacity: int,
    now: float,
    ends: list[tuple[float, int, str]],
    length_of: Callable[[int], float | None],
    ranks: Mapping[str, tuple],
    newcomers: Sequence[tuple[tuple, Ticket]],
) -> dict[str, float | None]:
    """One scenario: freed GPUs handed out by ``quotas.admission`` at each predicted end,
    newcomers joining the queue in their fair-share place as they arrive."""
    heapq.heapify(ends)
    seq = len(sessions)
    running = list(sessions)
    real = {t.key for t in tickets}
    rank_of = dict(ranks)
    waiting = list(tickets)
    coming = sorted(newcomers, key=lambda rt: rt[1].since)
    for r, t in coming:
        rank_of[t.key] = r
    out: dict[str, float | None] = {}
    t = now
    for _ in range(3 * (len(tickets) + len(running) + len(coming)) + 1):
        waiting.sort(key=lambda w: rank_of.get(w.key, (w.since, w.key)))
        verdicts = admission(waiting, running, policy, capacity)
        starting = {v.key for v in verdicts if v.status == START}
        for ticket in waiting:
            if ticket.key not in starting:
                continue
            out[ticket.key] = t
            running.append(
                Session(
                    ticket.key,
                    ticket.user,
                    ticket.group,
                    ticket.gpus,
                    started=t,
                    last_activity=t,
                    idle_limit=ticket.idle_limit,
                    max_age=ticket.max_age,
                )
            )
            length = length_of(seq)
            if length is None:
                limits = [x for x in (ticket.idle_limit, ticket.max_age) if x]
                length = min(limits) if limits else None
            if length is not None:
                heapq.heappush(ends, (t + length, seq, ticket.key))
            seq += 1
        waiting = [w for w in waiting if w.key not in starting]
        if not any(w.key in real for w in waiting):
            break
        next_end = ends[0][0] if ends else None
        next_arrival = coming[0][1].since if coming else None
        if next_end is None and next_arrival is None:
            break
        if next_end is not None and (next_arrival is None or next_end <= next_arrival):
            t, _, key = heapq.heappop(ends)
            running = [s for s in running if s.key != key]
        else:
            _, newcomer = coming.pop(0)
            t = newcomer.since
            waiting.append(newcomer)
        # Those who would have given up by then (start_timeout) leave the queue; for them the
        # answer is "not before giving up".
        gone = {w.key for w in waiting if w.gives_up is not None and w.gives_up < t}
        for w in waiting:
            if w.key in gone and w.key in real:
                out[w.key] = w.gives_up
        waiting = [w for w in waiting if w.key not in gone]
    return {key: out.get(key) for key in real}


def forecast(
    tickets: Sequence[Ticket],
    sessions: Sequence[Session],
    policy: QueuePolicy,
    capacity: int | None,
    now: float,
    turnover: Turnover,
    due: Mapping[str, Deadline] | None = None,
    *,
    arrivals: Arrivals | None = None,
    standings: Mapping[tuple[str, str], Standing] | None = None,
    group_factors: Mapping[str, float] | None = None,
    scenarios: int = SCENARIOS,
) -> dict[str, float | None]:
    """The time each ticket (in queue order) should start; None where nobody can say.

    The median over ``scenarios`` replays: in each, every active server's remaining time is
    another quantile of the observed turnover, spread evenly (a Latin hypercube, with a fixed
    stride instead of random draws, so the answer is deterministic), and newcomers arrive at
    each group's observed rate with another phase. The first in line waits for the first of
    several ends, which one median per server would overestimate."""
    due = due or {}
    standings = standings or {}
    if capacity is None:  # requests wait, so assume every GPU is held by the servers we know
        capacity = sum(s.gpus for s in sessions)
    turnover = turnover.with_running(
        [(s.last_activity - s.started, now - s.started) for s in sessions]
    )
    runs = scenarios if turnover.known else 1
    group_factors = group_factors or {}
    ranks = {}
    for ticket in tickets:
        stand = standings.get((ticket.group, ticket.user))
        fair = stand is not None and policy.order == "fairshare"
        ranks[ticket.key] = rank(ticket, stand) if fair else (0, 0, ticket.since, ticket.key)
    starts: dict[str, list[float | None]] = {t.key: [] for t in tickets}
    for j in range(runs):

        def q(i: int, j: int = j) -> float:
            return 0.5 if runs == 1 else (((j + i * STRIDE) % runs) + 0.5) / runs

        ends = []
        for i, s in enumerate(sessions):
            end = predicted_end(s, now, policy, turnover, due.get(s.key), q(i))
            if end is not None:
                ends.append((end, i, s.key))

        def length_of(i: int, q=q) -> float | None:
            return turnover.residual(0.0, q(i))

        newcomers = []
        if arrivals is not None:

            def spread(k: int, j: int = j) -> float:
                return (((j + (k + 1) * STRIDE_NEWCOMERS) % runs) + 0.5) / runs

            newcomers = _newcomers(tickets, policy, now, arrivals, group_factors, q(-1), spread)
        replay = _replay(
            tickets, sessions, policy, capacity, now, ends, length_of, ranks, newcomers
        )
        for key, start in replay.items():
            starts[key].append(start)
    out: dict[str, float | None] = {}
    for key, values in starts.items():
        known = sorted(v for v in values if v is not None)
        # The median scenario: unknown (or given up) when most scenarios cannot say.
        out[key] = known[len(values) // 2] if len(known) > len(values) // 2 else None
    return out


# ---------------------------------------------------------------------------- words


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st."""
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def wait_words(seconds: float) -> str:
    """An estimate for a person: "less than a minute", "about 12 min", "about 2 h"."""
    if seconds < 60:
        return "less than a minute"
    return f"about {duration(seconds)}"


def queue_line(position: int, eta_seconds: float | None, held: str = "") -> str:
    """ "3rd in the GPU queue, about 12 min" (plus why it is held back, when a quota holds it)."""
    line = f"{ordinal(position)} in the GPU queue"
    if eta_seconds is None:
        line += ", no estimate yet (no running GPU server has a time limit, and too few have ended)"
    else:
        line += f", {wait_words(eta_seconds)}"
    if held:
        line += f" ({held})"
    return line
