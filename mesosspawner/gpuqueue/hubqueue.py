"""GpuQueue: the GPU queue inside the hub, owned by the framework.

The I/O around ``plan.plan()``: it keeps the waiting GPU requests (tickets) and the running
GPU servers (sessions), feeds them to the pure policy with the time and the cluster's GPUs, and
applies the answer: which pending launches the framework may place now (``order``), each
person's line in the progress stream ("2nd in the GPU queue, about 12 min"), warnings, culls
(through the framework's kill, with the reason the person is told), a revive when a GPU frees
up while people wait, Prometheus metrics, and the state worth keeping across a hub restart
(usage, turnover, running sessions) in a JSON file next to the framework id file, with a live
snapshot for the admins' page.

It is handed data and the framework's own functions (kill, revive, note_kill_reason); it never
calls a spawner.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ..mesos.states import TERMINAL_STATES
from . import culling, eta
from .fairshare import Usage
from .metrics import queue_metrics
from .plan import Plan, plan
from .policy import GpuClaim, QueuePolicy, Session, Ticket
from .quotas import START, borrowed, refusal

STATE_VERSION = 1
# A session restored from the state file that no task answers for is dropped this long after
# the framework's first reconciliation (it ended while the hub was down).
RESTORE_GRACE = 60.0

log = logging.getLogger("mesosspawner.gpuqueue")


def epoch(when: Any) -> float | None:
    """A JupyterHub timestamp (naive UTC datetime) or a number as seconds since the epoch."""
    if when is None:
        return None
    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    return float(when)


class GpuQueue:
    """The hub's GPU queue (see the module docstring)."""

    def __init__(
        self,
        policy: QueuePolicy,
        *,
        state_file: str | None,
        tasks: Mapping[str, Any],
        kill: Callable[[str], Awaitable[Any]],
        revive: Callable[[], Awaitable[None]],
        note_kill_reason: Callable[[str, str], None],
        capacity: Callable[[], tuple[int | None, int | None]],
        reconciled: Callable[[], bool] = lambda: True,
        tick: float = 5.0,
        clock: Callable[[], float] = time.time,
        logger: logging.Logger | None = None,
    ) -> None:
        self.policy = policy
        self.state_file = state_file
        self._tasks = tasks  # the framework's records: read, never written
        self._kill = kill
        self._revive = revive
        self._note_kill_reason = note_kill_reason
        self._capacity = capacity
        self._reconciled = reconciled
        self.tick = tick
        self.clock = clock
        self.log = logger or log
        self.tickets: dict[str, Ticket] = {}
        self.requests: dict[str, Any] = {}  # ticket key -> LaunchRequest (its observer)
        self.sessions: dict[str, Session] = {}  # task id -> session
        self.usage: dict[tuple[str, str], Usage] = {}
        self.gpu_seconds: Counter = Counter()  # per group, undecayed (GPU-hours metric)
        self.lengths: list[tuple[float, float]] = []  # (active, length) of ended sessions
        self.arrivals: list[eta.Arrival] = []
        self.warned: dict[str, float] = {}
        self.warnings: dict[str, culling.Action] = {}
        self.culling: set[str] = set()
        # Launched, but JupyterHub has not polled them yet (it polls only servers that are up):
        # no idle clock runs while a server starts, however slow its image pull or first answer.
        self.starting: set[str] = set()
        self.last: Plan | None = None
        self._since: dict[str, float] = {}  # ticket key -> first time it joined (retries keep it)
        self._accounted_at = self.clock()
        self._restored_at: float | None = None
        self._loop: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        self.metrics = queue_metrics()
        self._profiles_seen: set[str] = set()
        self._groups_seen: set[str] = set()
        self._load()

    # ------------------------------------------------------------------ the framework's side

    def claim_of(self, req) -> GpuClaim:
        claim = getattr(req, "gpu", None)
        return claim if claim is not None else GpuClaim(user=req.needs.key)

    def _ticket(self, req, now: float) -> Ticket:
        claim = self.claim_of(req)
        key = req.needs.key
        since = self._since.setdefault(key, now)
        return Ticket(
            key,
            claim.user,
            self.policy.group_for(claim.groups),
            req.needs.gpus,
            since=since,
            profile=claim.profile,
            server=claim.server,
            idle_limit=claim.idle_limit,
            max_age=claim.max_age,
            gives_up=since + claim.patience if claim.patience else None,
        )

    def join(self, req) -> str | None:
        """Queue a GPU request; the reason it is refused at once instead (a quota), or None.
        Requests without GPUs pass through untouched."""
        if not req.needs.gpus:
            return None
        now = self.clock()
        ticket = self._ticket(req, now)
        why = refusal(
            ticket, list(self.sessions.values()), list(self.tickets.values()), self.policy
        )
        if why:
            self._since.pop(ticket.key, None)
            self.metrics["refused"].labels(group=ticket.group).inc()
            return why
        standing = (self.last.standings if self.last else {}).get((ticket.group, ticket.user))
        self.arrivals.append(
            eta.Arrival(now, ticket.group, standing.user_factor if standing else 1.0)
        )
        self.tickets[ticket.key] = ticket
        self.requests[ticket.key] = req
        self._start_loop()
        self.refresh()
        return None

    def leave(self, req) -> None:
        """A request withdrawn before it launched (cancelled, timed out, failed)."""
        key = req.needs.key
        self.tickets.pop(key, None)
        self.requests.pop(key, None)
        if not req.task_id or req.task_id not in self.sessions:
            self._since.pop(key, None)
        self._wake.set()

    def order(self, pending: Iterable[Any]) -> list[Any]:
        """The pending launches the framework may place now, in order: those without GPUs
        (first come, first served), then the GPU requests the queue lets start, first in
        line first. The others wait for a later offer."""
        pending = list(pending)
        plain = [r for r in pending if not r.needs.gpus]
        gpu = {r.needs.key: r for r in pending if r.needs.gpus}
        if not gpu:
            return plain
        for key, req in gpu.items():
            if key not in self.tickets:  # e.g. requeued after a stale offer
                self.tickets[key] = self._ticket(req, self.clock())
                self.requests[key] = req
        current = self._plan(estimate=False)
        return plain + [gpu[t.key] for t in current.startable() if t.key in gpu]

    def launched(self, req, task_id: str) -> None:
        """A GPU request won an offer: its ticket becomes a running session."""
        if not req.needs.gpus:
            return
        key = req.needs.key
        now = self.clock()
        ticket = self.tickets.pop(key, None) or self._ticket(req, now)
        self.requests.pop(key, None)
        self._charge(now)
        self.sessions[task_id] = Session(
            task_id,
            ticket.user,
            ticket.group,
            ticket.gpus,
            started=now,
            last_activity=now,
            idle_limit=ticket.idle_limit,
            max_age=ticket.max_age,
            profile=ticket.profile,
            server=ticket.server,
        )
        self.starting.add(task_id)
        self.metrics["wait"].labels(group=ticket.group).observe(max(0.0, now - ticket.since))
        self._since.pop(key, None)
        self._start_loop()
        self._save()

    def requeued(self, req, task_id: str | None) -> None:
        """A launch is retried (stale offer, registration timeout): back in line, in its
        first place."""
        if task_id and task_id in self.sessions:
            self._charge(self.clock())
            self.sessions.pop(task_id, None)
        if req.needs.gpus:
            key = req.needs.key
            self.tickets[key] = self._ticket(req, self.clock())
            self.requests[key] = req

    def ended(self, task_id: str) -> None:
        """A GPU server's task ended: its GPUs go back, and to the queue's head at once."""
        session = self.sessions.get(task_id)
        if session is None:
            return
        now = self.clock()
        self._charge(now)
        del self.sessions[task_id]
        self.starting.discard(task_id)
        self.warned.pop(task_id, None)
        self.warnings.pop(task_id, None)
        self.culling.discard(task_id)
        self.lengths.append((session.last_activity - session.started, now - session.started))
        del self.lengths[: -eta.KEEP_LENGTHS]
        self._save()
        if self.tickets:
            # Mesos offers freed resources again only after the decline filter, unless revived.
            self._spawn(self._revive())
            self._wake.set()

    def note_activity(self, task_id: str | None, when: Any) -> None:
        """The hub's last activity of a server (``Spawner.orm_spawner.last_activity``)."""
        session = self.sessions.get(task_id or "")
        if session is None:
            return
        seen = epoch(when)
        if task_id in self.starting:  # its first poll: the server is up, its idle clock starts
            self.starting.discard(task_id)
            seen = max(seen or 0.0, self.clock())
        if seen is None or seen <= session.last_activity:
            return
        self.sessions[task_id] = Session(**{**session.__dict__, "last_activity": seen})

    def restore(self, task_id: str, claim: GpuClaim, gpus: int, started: float) -> None:
        """A running GPU server the state file did not know (e.g. an older hub's)."""
        if task_id in self.sessions or gpus <= 0:
            return
        self.sessions[task_id] = Session(
            task_id,
            claim.user,
            self.policy.group_for(claim.groups),
            gpus,
            started=started,
            last_activity=started,
            idle_limit=claim.idle_limit,
            max_age=claim.max_age,
            profile=claim.profile,
            server=claim.server,
        )
        self._start_loop()

    # ------------------------------------------------------------------ the policy

    def capacity_now(self) -> int | None:
        """The GPUs this hub can count on: the cluster's, or, when offers tell what is free,
        what it holds plus what is free (other frameworks may hold the rest)."""
        total, free = self._capacity()
        if free is None:
            return total
        held = sum(s.gpus for s in self.sessions.values())
        return held + free if total is None else min(total, held + free)

    def _plan(self, *, estimate: bool) -> Plan:
        now = self.clock()
        result = plan(
            self.policy,
            list(self.tickets.values()),
            [
                replace(s, last_activity=now) if s.key in self.starting else s
                for s in self.sessions.values()
            ],
            self.usage,
            eta.Turnover.of(self.lengths),
            self.warned,
            self.capacity_now(),
            now,
            arrivals=eta.Arrivals.of(self.arrivals, now),
            estimate=estimate,
        )
        self._account(now)
        self.usage = result.usage
        if estimate:
            self.last = result
        return result

    def _charge(self, now: float) -> None:
        """Bring usage to ``now`` before what people hold changes."""
        self._plan(estimate=False)

    def _account(self, now: float) -> None:
        dt = max(0.0, now - self._accounted_at)
        self._accounted_at = now
        for s in self.sessions.values():
            self.gpu_seconds[s.group] += s.gpus * dt
            self.metrics["gpu_hours"].labels(group=s.group).inc(s.gpus * dt / 3600.0)

    def refresh(self) -> Plan:
        """Look at the queue now: tell each waiting person their line, warn, cull."""
        self._forget_vanished()
        result = self._plan(estimate=True)
        for key, req in list(self.requests.items()):
            if key in self.tickets:
                notify = getattr(req.observer, "in_queue", None)
                if notify is not None:
                    notify(result.line(key))
        for action in result.actions:
            self._apply(action, result.now)
        self._update_metrics(result)
        self._save(result)
        return result

    def _apply(self, action: culling.Action, now: float) -> None:
        session = self.sessions.get(action.key)
        if action.kind == culling.CLEAR:
            self.warned.pop(action.key, None)
            self.warnings.pop(action.key, None)
            return
        if session is None or action.key in self.culling:
            return
        if action.kind == culling.WARN:
            self.warned[action.key] = now
            self.warnings[action.key] = action
            self.log.info(
                "GPU server %s/%s of %s will be culled in %s: %s",
                session.user,
                session.server,
                session.group,
                culling.duration(action.at - now),
                action.why,
            )
        elif action.kind == culling.CULL:
            self.culling.add(action.key)
            self.warnings.pop(action.key, None)
            why = f"stopped by the GPU culler: {action.why}"
            if self.tickets:
                why += "; its GPU went to the next person in the GPU queue"
            self.log.warning("Culling GPU server %s/%s: %s", session.user, session.server, why)
            self.metrics["culls"].labels(reason=action.deadline_kind).inc()
            self._note_kill_reason(action.key, why)
            self._spawn(self._kill(action.key))

    def _forget_vanished(self) -> None:
        """Sessions whose task ended without this queue hearing (a hub restart in between)."""
        for task_id in list(self.sessions):
            record = self._tasks.get(task_id)
            if record is not None and record.state in TERMINAL_STATES:
                self.ended(task_id)
            elif record is None and self._restored_at is not None and self._reconciled():
                if self.clock() - self._restored_at > RESTORE_GRACE:
                    self.log.info("Forgetting GPU session %s: no task answers for it", task_id)
                    self.ended(task_id)

    # ------------------------------------------------------------------ answers

    def notices_for(self, user: str) -> list[str]:
        """What ``user`` should read on the hub's pages: their servers about to be culled."""
        now = self.clock()
        out = []
        for key, action in sorted(self.warnings.items()):
            session = self.sessions.get(key)
            if session is None or session.user != user:
                continue
            name = f"server {session.server!r}" if session.server else "default server"
            keep = (
                "Save your work: it cannot be extended."
                if action.deadline_kind == culling.MAX_AGE
                else "Use it (open it, run something) to keep it."
            )
            when = eta.wait_words(action.at - now).removeprefix("about ")
            out.append(f"Your GPU {name} will be stopped in {when} because {action.why}. {keep}")
        return out

    def preview(self, claim: GpuClaim, gpus: int) -> tuple[str, str] | None:
        """For the options form: where a request of ``gpus`` by ``claim``'s person would
        stand now. ("never", why) if their quota refuses it, ("wait", "you would be 2nd in the
        GPU queue, about 12 min") if people wait, else None. Changes nothing."""
        now = self.clock()
        key = "\0preview"
        ticket = Ticket(
            key,
            claim.user,
            self.policy.group_for(claim.groups),
            gpus,
            since=now,
            profile=claim.profile,
            server=claim.server,
            idle_limit=claim.idle_limit,
            max_age=claim.max_age,
        )
        sessions = list(self.sessions.values())
        why = refusal(ticket, sessions, list(self.tickets.values()), self.policy)
        if why:
            return "never", why
        if not self.tickets:
            return None
        result = plan(
            self.policy,
            [*self.tickets.values(), ticket],
            sessions,
            self.usage,
            eta.Turnover.of(self.lengths),
            self.warned,
            self.capacity_now(),
            now,
            arrivals=eta.Arrivals.of(self.arrivals, now),
        )
        if result.verdicts[key].status == START:
            return None
        return "wait", "you would be " + result.line(key)

    def snapshot(self, result: Plan | None = None) -> dict:
        """The queue as plain JSON for the admins' page."""
        result = result or self.last or self._plan(estimate=True)
        lent = {s.key for s in borrowed(list(self.sessions.values()), self.policy)}
        in_use: Counter = Counter()
        for s in self.sessions.values():
            in_use[s.group] += s.gpus
        waiting: Counter = Counter()
        for t in self.tickets.values():
            waiting[t.group] += t.gpus
        names = [g.name for g in self.policy.groups] + sorted(
            {*in_use, *waiting, *(g for g, _ in self.usage)} - {g.name for g in self.policy.groups}
        )
        usage: Counter = Counter()
        for (group, _), u in result.usage.items():
            usage[group] += u.value
        groups = []
        for name in names:
            g = self.policy.group(name)
            groups.append(
                {
                    "name": name,
                    "share": g.share,
                    "quota": g.quota,
                    "limit": g.limit,
                    "in_use": in_use[name],
                    "waiting": waiting[name],
                    "usage_gpu_hours": usage[name] / 3600.0,
                    "gpu_hours": self.gpu_seconds[name] / 3600.0,
                }
            )
        rows = []
        for i, t in enumerate(result.order, 1):
            v = result.verdicts.get(t.key)
            rows.append(
                {
                    "position": i,
                    "user": t.user,
                    "server": t.server,
                    "group": t.group,
                    "profile": t.profile,
                    "gpus": t.gpus,
                    "since": t.since,
                    "eta_seconds": result.wait(t.key),
                    "status": v.status if v else "",
                    "why": v.why if v else "",
                    "line": result.line(t.key),
                }
            )
        running = []
        for s in sorted(self.sessions.values(), key=lambda s: (s.group, s.started)):
            d = result.deadlines.get(s.key)
            running.append(
                {
                    "user": s.user,
                    "server": s.server,
                    "group": s.group,
                    "profile": s.profile,
                    "gpus": s.gpus,
                    "started": s.started,
                    "last_activity": s.last_activity,
                    "borrowed": s.key in lent,
                    "deadline": {"at": d.at, "kind": d.kind, "why": d.why} if d else None,
                    "warned": s.key in self.warned,
                }
            )
        return {
            "updated": result.now,
            "capacity": self.capacity_now(),
            "half_life_hours": self.policy.half_life / 3600.0,
            "order": self.policy.order,
            "borrowing": self.policy.borrowing,
            "groups": groups,
            "waiting": rows,
            "running": running,
        }

    # ------------------------------------------------------------------ loop, metrics, state

    def _start_loop(self) -> None:
        if self._loop is None or self._loop.done():
            try:
                self._loop = asyncio.get_running_loop().create_task(self._run())
            except RuntimeError:  # no loop (plain unit use): refresh() by hand
                self._loop = None

    async def _run(self) -> None:
        while self.tickets or self.sessions:
            try:
                self.refresh()
            except Exception:  # the queue must never take the framework down
                self.log.exception("GPU queue refresh failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.tick)
            except TimeoutError:
                pass
        self.refresh()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
        for task in list(self._background):
            task.cancel()
        self._save()

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("GPU queue background task failed", exc_info=task.exception())

    def _update_metrics(self, result: Plan) -> None:
        by_profile: Counter = Counter(t.profile or "default" for t in result.order)
        gauge = self.metrics["queue_length"]
        for profile in set(by_profile) | self._profiles_seen:
            gauge.labels(profile=profile).set(by_profile.get(profile, 0))
        self._profiles_seen = set(by_profile) | self._profiles_seen
        in_use: Counter = Counter()
        for s in self.sessions.values():
            in_use[s.group] += s.gpus
        for group in set(in_use) | self._groups_seen:
            self.metrics["in_use"].labels(group=group).set(in_use.get(group, 0))
        self._groups_seen = set(in_use) | self._groups_seen

    def _load(self) -> None:
        path = self.state_file
        if not path or not os.path.exists(path):
            return
        try:
            with open(path) as f:
                data = json.load(f)
            if data.get("version") != STATE_VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {STATE_VERSION}")
            self.usage = {
                (u["group"], u["user"]): Usage(float(u["gpu_seconds"]), float(u["at"]))
                for u in data.get("usage", [])
            }
            self.gpu_seconds = Counter(
                {g: float(v) for g, v in (data.get("gpu_seconds") or {}).items()}
            )
            self.lengths = [(float(a), float(b)) for a, b in data.get("lengths", [])]
            self.sessions = {
                s["key"]: Session(**{k: s.get(k) for k in Session.__dataclass_fields__})
                for s in data.get("sessions", [])
            }
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.log.warning("Ignoring unreadable GPU queue state %s: %s", path, e)
            return
        self._restored_at = self.clock()
        self.log.info(
            "GPU queue state restored from %s: %d running sessions, usage of %d people",
            path,
            len(self.sessions),
            len(self.usage),
        )

    def _save(self, result: Plan | None = None) -> None:
        path = self.state_file
        if not path:
            return
        if not (self.usage or self.sessions or self.tickets or os.path.exists(path)):
            return  # a hub that never saw a GPU request leaves no file behind
        data = {
            "version": STATE_VERSION,
            "saved": self.clock(),
            "usage": [
                {"group": g, "user": u, "gpu_seconds": v.value, "at": v.at}
                for (g, u), v in sorted(self.usage.items())
            ],
            "gpu_seconds": dict(self.gpu_seconds),
            "lengths": self.lengths,
            "sessions": [s.__dict__ for s in self.sessions.values()],
        }
        try:
            data["live"] = self.snapshot(result) if result is not None else self._live()
        except Exception:  # the snapshot is for a page; the state matters more
            self.log.exception("GPU queue snapshot failed")
        tmp = f"{path}.tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(data, f)
            os.replace(tmp, path)
        except OSError as e:
            self.log.error("Could not save the GPU queue state to %s: %s", path, e)

    def _live(self) -> dict:
        return self.snapshot(self.last) if self.last is not None else {}
