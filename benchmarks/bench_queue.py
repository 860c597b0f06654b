"""A day of a busy GPU lab: the fair GPU queue against first-come, first-served.

    python benchmarks/bench_queue.py [--seed 1] [--days 10] [--each-day] [--json FILE]

Simulates one day (24 h) of 8 GPUs shared by 30 people in 3 groups with shares 1:1:2 (10
people each, all with the same habits, so first-come order serves the groups equally and
ignores the shares). Each person works a 8-10 h window starting between 7:30 and 10:00; while
in it and without a GPU server, they ask for one at Poisson times (mean 45 min apart). A
session's active part is heavy-tailed (lognormal, median 50 min, sigma 1.1, at most 10 h);
then 45 % stop their server, the others leave it idle until the culler takes it after 30 min
(the GPU profile's idle limit; its maximum age is 8 h). A request not started within 2 h is
given up (JupyterHub's start_timeout) and asked again later.

Three queues run the same day (the same people, the same random draws):

- ``first-come``: today's order (``order="fifo"``), no quotas;
- ``fair share``: usage decayed over the half-life, shares 1:1:2 (``order="fairshare"``);
- ``fair + quotas``: the same, plus nominal quotas 2/2/4 GPUs with borrowing of idle quota
  (borrowed servers given back after 10 min idle when the owners wait).

Every decision is ``mesosspawner.gpuqueue.plan.plan()``, the function the hub's framework calls
(fair-share order, quota admission, cull deadlines and warnings, and the ETA each person
reads); the simulation only moves the clock, in 15 s steps (the hub's queue tick).

Reported per queue: each group's GPU-hours and its part of all against its share (goal: every
group within +-10 % of its share), Jain's fairness index over the groups' part/share (goal >=
0.95), median and p95 wait per group, and the ETA's error: for every request that had to wait
at least a minute, |estimated wait when it joined the queue - actual wait| / actual wait, whose
median is the goal (<= 25 %). Seeded and deterministic.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mesosspawner.gpuqueue import culling, fairshare  # noqa: E402
from mesosspawner.gpuqueue.eta import KEEP_LENGTHS, Arrival, Arrivals, Turnover  # noqa: E402
from mesosspawner.gpuqueue.plan import plan  # noqa: E402
from mesosspawner.gpuqueue.policy import QueuePolicy, Session, Ticket, load_policy  # noqa: E402

HOUR = 3600.0
DAY = 24 * HOUR
STEP = 15.0
GPUS = 8
GROUPS = {"vision": 1, "nlp": 1, "robotics": 2}
QUOTAS = {"vision": 2, "nlp": 2, "robotics": 4}
LIMITS: dict[str, int] = {}
PEOPLE_PER_GROUP = 10
THINK_MEAN = 45 * 60.0
ACTIVE_MEDIAN = 50 * 60.0
ACTIVE_SIGMA = 1.1
ACTIVE_MAX = 10 * HOUR
STOP_PROBABILITY = 0.25
IDLE_LIMIT = 60 * 60.0
MAX_AGE = 8 * HOUR
PATIENCE = 2 * HOUR
WARNING = 5 * 60.0
RECLAIM_IDLE = 10 * 60.0
LIVE_EVERY = 20  # steps between samples of the estimate people read while waiting (5 min)


@dataclass
class Person:
    name: str
    group: str
    rng: random.Random
    window: tuple[float, float]
    next_ask: float | None = None
    asked_at: float | None = None
    active_until: float = 0.0  # the session's active part ends
    stops: bool = False  # stops the server at the end of its active part (else it idles)


@dataclass
class Outcome:
    name: str
    gpu_seconds: dict[str, float] = field(default_factory=dict)
    contended: dict[str, float] = field(default_factory=dict)  # while anyone waited
    waits: dict[str, list[float]] = field(default_factory=dict)
    gave_up: dict[str, int] = field(default_factory=dict)
    eta_errors: list[float] = field(default_factory=list)
    eta_minutes_off: list[float] = field(default_factory=list)
    eta_signed: list[float] = field(default_factory=list)  # (estimate - actual) / actual
    live_errors: list[float] = field(default_factory=list)  # the estimate read while waiting
    no_estimate: int = 0
    culled: dict[str, int] = field(default_factory=dict)
    sessions: int = 0


def policies(half_life: float) -> dict[str, QueuePolicy]:
    common = dict(
        half_life=half_life,
        warning_seconds=WARNING,
        reclaim_idle_seconds=RECLAIM_IDLE,
        quiet_after=STEP * 2,  # the simulation reports activity every step
    )
    shares = {g: {"share": s} for g, s in GROUPS.items()}
    quotas = {
        g: {"share": s, "quota": QUOTAS[g], "limit": LIMITS.get(g)} for g, s in GROUPS.items()
    }
    return {
        "first-come": load_policy(groups=shares, order="fifo", **common),
        "fair share": load_policy(groups=shares, **common),
        "fair + quotas": load_policy(groups=quotas, **common),
    }


def people(seed: int) -> list[Person]:
    rng = random.Random(seed)
    out = []
    for group in GROUPS:
        for i in range(PEOPLE_PER_GROUP):
            start = rng.uniform(7.5 * HOUR, 10 * HOUR)
            window = (start, start + rng.uniform(8 * HOUR, 10 * HOUR))
            out.append(Person(f"{group}-{i:02d}", group, random.Random(rng.random()), window))
    return out


def simulate(name: str, policy: QueuePolicy, seed: int) -> Outcome:
    crowd = people(seed)
    by_name = {p.name: p for p in crowd}
    for p in crowd:
        p.next_ask = p.window[0] + p.rng.expovariate(1 / THINK_MEAN)
    out = Outcome(
        name,
        {g: 0.0 for g in GROUPS},
        {g: 0.0 for g in GROUPS},
        {g: [] for g in GROUPS},
        {g: 0 for g in GROUPS},
    )
    out.culled = {kind: 0 for kind in (culling.IDLE, culling.MAX_AGE, culling.RECLAIM)}
    tickets: dict[str, Ticket] = {}
    sessions: dict[str, Session] = {}
    history: dict = {}
    lengths: list[tuple[float, float]] = []  # (active, length) of ended sessions
    warned: dict[str, float] = {}
    predicted: dict[str, float | None] = {}
    live: dict[str, list[tuple[float, float | None]]] = {}  # what each waiting person read
    arrived: list[Arrival] = []
    serial = 0

    def end(key: str, now: float) -> None:
        s = sessions.pop(key)
        warned.pop(key, None)
        lengths.append((s.last_activity - s.started, now - s.started))
        del lengths[:-KEEP_LENGTHS]
        p = by_name[s.user]
        if now < p.window[1]:
            p.next_ask = now + p.rng.expovariate(1 / THINK_MEAN)

    now = 0.0
    while now < DAY:
        # People: new requests, requests given up, servers stopped by their owners.
        for p in crowd:
            if p.next_ask is not None and now >= p.next_ask and p.window[0] <= now < p.window[1]:
                serial += 1
                key = f"{p.name}#{serial}"
                tickets[key] = Ticket(
                    key,
                    p.name,
                    p.group,
                    1,
                    since=now,
                    idle_limit=IDLE_LIMIT,
                    max_age=MAX_AGE,
                    gives_up=now + PATIENCE,
                )
                p.next_ask, p.asked_at = None, now
                # Where the newcomer stands, as the hub records it when a request joins.
                values = {k: u.value for k, u in history.items()}
                stand = fairshare.standings(values, [(p.group, p.name)], policy)
                arrived.append(Arrival(now, p.group, stand[(p.group, p.name)].user_factor))
        for key, t in list(tickets.items()):
            if now - t.since >= PATIENCE:
                del tickets[key]
                predicted.pop(key, None)
                out.gave_up[t.group] += 1
                p = by_name[t.user]
                if now < p.window[1]:
                    p.next_ask = now + p.rng.expovariate(1 / THINK_MEAN)
        for key, s in list(sessions.items()):
            p = by_name[s.user]
            if now < p.active_until:
                sessions[key] = replace(s, last_activity=now)
            elif p.stops:
                end(key, now)
        # The queue's decisions, exactly as the hub's framework takes them.
        new = [k for k in tickets if k not in predicted]
        sample = tickets and round(now / STEP) % LIVE_EVERY == 0
        result = plan(
            policy,
            list(tickets.values()),
            list(sessions.values()),
            history,
            Turnover.of(lengths),
            warned,
            GPUS,
            now,
            arrivals=Arrivals.of(arrived, now),
            estimate=bool(new) or bool(sample),
        )
        history = result.usage
        for act in result.actions:
            if act.kind == culling.WARN:
                warned[act.key] = now
            elif act.kind == culling.CLEAR:
                warned.pop(act.key, None)
            elif act.kind == culling.CULL and act.key in sessions:
                out.culled[act.deadline_kind] += 1
                end(act.key, now)
        starting = result.startable()
        free = GPUS - sum(s.gpus for s in sessions.values())
        for t in starting:
            if t.gpus > free:
                break  # a cull just now is seen at the next step, as after an offer cycle
            free -= t.gpus
            del tickets[t.key]
            p = by_name[t.user]
            waited = now - t.since
            out.waits[t.group].append(waited)
            for at, shown in live.pop(t.key, []):
                if now - at >= 60 and shown is not None:
                    out.live_errors.append(abs(shown - (now - at)) / (now - at))
            guess = predicted.pop(t.key, result.wait(t.key) if t.key in new else None)
            if waited >= 60:
                if guess is None:
                    out.no_estimate += 1
                else:
                    out.eta_errors.append(abs(guess - waited) / waited)
                    out.eta_minutes_off.append(abs(guess - waited) / 60)
                    out.eta_signed.append((guess - waited) / waited)
            active = min(ACTIVE_MAX, p.rng.lognormvariate(math.log(ACTIVE_MEDIAN), ACTIVE_SIGMA))
            p.active_until = now + active
            p.stops = p.rng.random() < STOP_PROBABILITY
            sessions[t.key] = Session(
                t.key, t.user, t.group, t.gpus, now, now, IDLE_LIMIT, MAX_AGE, "gpu", ""
            )
            out.sessions += 1
        for key in new:
            if key in tickets:
                predicted[key] = result.wait(key)
        if sample:
            for key in tickets:
                live.setdefault(key, []).append((now, result.wait(key)))
        for s in sessions.values():
            out.gpu_seconds[s.group] += s.gpus * STEP
            if tickets:
                out.contended[s.group] += s.gpus * STEP
        now += STEP
    return out


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    data = sorted(values)
    pos = (len(data) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(o: Outcome) -> dict:
    total = sum(o.gpu_seconds.values()) or 1.0
    contended = sum(o.contended.values()) or 1.0
    share_total = sum(GROUPS.values())
    groups = {}
    ratios = []
    for g, share in GROUPS.items():
        part = o.gpu_seconds[g] / total
        target = share / share_total
        ratios.append(part / target)
        groups[g] = {
            "gpu_hours": o.gpu_seconds[g] / HOUR,
            "part": part,
            "share": target,
            "off_share": part / target - 1,
            "contended_part": o.contended[g] / contended,
            "contended_off_share": (o.contended[g] / contended) / target - 1,
            "median_wait_min": quantile(o.waits[g], 0.5) / 60,
            "p95_wait_min": quantile(o.waits[g], 0.95) / 60,
            "started": len(o.waits[g]),
            "gave_up": o.gave_up[g],
        }
    jain = sum(ratios) ** 2 / (len(ratios) * sum(r * r for r in ratios))
    return {
        "queue": o.name,
        "groups": groups,
        "jain": jain,
        "eta_median_error": statistics.median(o.eta_errors) if o.eta_errors else float("nan"),
        "eta_median_minutes_off": statistics.median(o.eta_minutes_off)
        if o.eta_minutes_off
        else float("nan"),
        "eta_live_median_error": statistics.median(o.live_errors)
        if o.live_errors
        else float("nan"),
        "eta_median_bias": statistics.median(o.eta_signed) if o.eta_signed else float("nan"),
        "eta_errors_all": o.eta_errors,
        "eta_live_errors_all": o.live_errors,
        "eta_samples": len(o.eta_errors),
        "no_estimate": o.no_estimate,
        "sessions": o.sessions,
        "utilisation": total / (GPUS * DAY),
        "culled": o.culled,
    }


def table(results: list[dict]) -> str:
    names = [r["queue"] for r in results]
    width = 17
    lines = [" " * 30 + "".join(f"{n:>{width}}" for n in names)]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"{label:<30}" + "".join(f"{c:>{width}}" for c in cells))

    for g in GROUPS:
        share = results[0]["groups"][g]["share"]
        row(
            f"{g} GPU-h (share {share:.0%})",
            [f"{r['groups'][g]['gpu_hours']:.1f} ({r['groups'][g]['part']:.1%})" for r in results],
        )
    for g in GROUPS:
        row(f"{g} vs share", [f"{r['groups'][g]['off_share']:+.1%}" for r in results])
    row("Jain index (goal >= 0.95)", [f"{r['jain']:.3f}" for r in results])
    for g in GROUPS:
        row(
            f"{g} wait median / p95",
            [
                "{:.0f} / {:.0f} min".format(
                    r["groups"][g]["median_wait_min"], r["groups"][g]["p95_wait_min"]
                )
                for r in results
            ],
        )
    for g in GROUPS:
        row(
            f"{g} started / gave up",
            [f"{r['groups'][g]['started']} / {r['groups'][g]['gave_up']}" for r in results],
        )
    row("ETA median error (<= 25 %)", [f"{r['eta_median_error']:.1%}" for r in results])
    row("ETA read while waiting", [f"{r['eta_live_median_error']:.1%}" for r in results])
    row("ETA median |error|", [f"{r['eta_median_minutes_off']:.1f} min" for r in results])
    row("ETA median bias", [f"{r['eta_median_bias']:+.1%}" for r in results])
    row("ETA samples / none", [f"{r['eta_samples']} / {r['no_estimate']}" for r in results])
    row("GPU utilisation", [f"{r['utilisation']:.1%}" for r in results])
    row(
        "culled idle/max-age/reclaim",
        [
            "/".join(str(r["culled"][k]) for k in (culling.IDLE, culling.MAX_AGE, culling.RECLAIM))
            for r in results
        ],
    )
    return "\n".join(lines)


def pooled(days: list[list[dict]], q: int, key: str) -> float:
    values = [x for d in days for x in d[q][key]]
    return statistics.median(values) if values else float("nan")


def over_days(days: list[list[dict]]) -> dict:
    """Each queue over the days: each group's mean part against its share, the days within
    +-10 %, Jain's index (mean, worst day), and the ETA errors pooled over every request."""
    out = {}
    for q, first in enumerate(days[0]):
        parts = {g: statistics.mean(d[q]["groups"][g]["part"] for d in days) for g in GROUPS}
        share_total = sum(GROUPS.values())
        out[first["queue"]] = {
            "parts": parts,
            "off_share": {g: parts[g] / (GROUPS[g] / share_total) - 1 for g in GROUPS},
            "days_within": sum(
                all(abs(x["off_share"]) <= 0.10 for x in d[q]["groups"].values()) for d in days
            ),
            "jain_mean": statistics.mean(d[q]["jain"] for d in days),
            "jain_min": min(d[q]["jain"] for d in days),
            "eta_error": pooled(days, q, "eta_errors_all"),
            "eta_live_error": pooled(days, q, "eta_live_errors_all"),
            "median_wait_min": statistics.mean(
                statistics.median(g["median_wait_min"] for g in d[q]["groups"].values())
                for d in days
            ),
            "gave_up": statistics.mean(
                sum(g["gave_up"] for g in d[q]["groups"].values()) for d in days
            ),
        }
    return out


def days_table(summary: dict, n: int) -> str:
    names = list(summary)
    lines = [f"{'over ' + str(n) + ' days':<30}" + "".join(f"{q:>17}" for q in names)]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"{label:<30}" + "".join(f"{c:>17}" for c in cells))

    share_total = sum(GROUPS.values())
    for g, share in GROUPS.items():
        row(
            f"{g} part (share {share / share_total:.0%})",
            [f"{summary[q]['parts'][g]:.1%} ({summary[q]['off_share'][g]:+.0%})" for q in names],
        )
    row("days all within +-10 %", [f"{summary[q]['days_within']} / {n}" for q in names])
    row(
        "Jain mean (worst day)",
        [f"{summary[q]['jain_mean']:.3f} ({summary[q]['jain_min']:.3f})" for q in names],
    )
    row("ETA median error (pooled)", [f"{summary[q]['eta_error']:.1%}" for q in names])
    row("ETA read while waiting", [f"{summary[q]['eta_live_error']:.1%}" for q in names])
    row("median wait (mean of days)", [f"{summary[q]['median_wait_min']:.0f} min" for q in names])
    row("requests given up per day", [f"{summary[q]['gave_up']:.0f}" for q in names])
    return "\n".join(lines)


def goals(summary: dict) -> list[str]:
    """The goals the fair queue misses over the days (empty: all met)."""
    fair = summary["fair + quotas"]
    missed = [
        f"{g} is {off:+.1%} off its share"
        for g, off in fair["off_share"].items()
        if abs(off) > 0.10
    ]
    if not fair["jain_min"] >= 0.95:
        missed.append(f"Jain index {fair['jain_min']:.3f} < 0.95 on a day")
    if not fair["eta_error"] <= 0.25:
        missed.append(f"ETA median error {fair['eta_error']:.1%} > 25 %")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="the first day's seed (default 1)")
    parser.add_argument("--days", type=int, default=10, help="days to simulate (default 10)")
    parser.add_argument("--each-day", action="store_true", help="a table for every day")
    parser.add_argument("--half-life-hours", type=float, default=4.0)
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    days = []
    for seed in range(args.seed, args.seed + args.days):
        results = [
            summary(simulate(name, policy, seed))
            for name, policy in policies(args.half_life_hours * HOUR).items()
        ]
        if args.each_day or seed == args.seed:
            print(f"\nday {seed}: 8 GPUs, 30 people in 3 groups with shares 1:1:2")
            print(table(results))
        days.append(results)
    over = over_days(days)
    print()
    print(days_table(over, len(days)))
    missed = goals(over)
    print("\ngoals (fair + quotas, over the days):", "all met" if not missed else "; ".join(missed))
    if args.json:
        slim = [[{k: v for k, v in r.items() if not k.endswith("_all")} for r in d] for d in days]
        args.json.write_text(json.dumps({"days": slim, "over_days": over}, indent=2))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
