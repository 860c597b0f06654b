"""MesosFramework: the one Mesos framework a hub process shares between all its spawners.

Like KubeSpawner's shared reflectors, one SUBSCRIBE stream serves every spawner: a queue of
pending launches matched against offers by `placement`, a cache of task states fed by status
updates (so `poll()` never makes a round trip), reconciliation after every (re)subscribe, and the
framework id persisted so a restarted hub re-subscribes as the same framework and keeps its tasks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from . import framework_identity as identity
from . import maintenance, taskinfo
from . import placement as plc
from .cluster_view import ClusterView
from .gpuqueue.hubqueue import GpuQueue
from .gpuqueue.policy import QueuePolicy
from .launch_failures import REGISTRATION_TIMEOUT_HINT, RETRY_REASONS, registration_timed_out
from .mesos import credentials, events
from .mesos.client import EventHandler, MesosError, SchedulerClient
from .mesos.state import RoleQuota, TaskSeen
from .mesos.states import ACTIVE_STATES, STARTING_STATES, STOPPED_STATES, TERMINAL_STATES
from .mesos.wire import number, value_of
from .metrics import framework_metrics
from .naming import task_id_prefixes
from .orphans import OrphanReaper
from .spark_cleanup import SparkCleanup
from .stop_notes import StopNotes
from .tasks import (
    OFFER_ATTEMPTS,
    LaunchFailed,
    LaunchObserver,
    LaunchRequest,
    SilentObserver,
    TaskRecord,
)

log = logging.getLogger("mesosspawner.framework")


@dataclass(frozen=True, kw_only=True)
class FrameworkConfig:
    """Everything the shared framework is configured with; ``MesosSpawner.framework_config()``
    fills it from the spawner's traits, which hold the only defaults."""

    master: str
    name: str
    user: str
    roles: tuple[str, ...]
    failover_timeout: float
    principal: str | None
    secret: str | None = field(repr=False)
    ca_file: str | None
    webui_url: str | None
    id_file: str | None
    hub_id: str
    refuse_seconds: float
    idle_refuse_seconds: float
    strategy: str
    orphan_grace_seconds: float
    orphan_kill: bool
    # Mesos's reconciliation guide: reconcile periodically, and ask again for tasks the master
    # has not answered (it stays silent about agents it has not heard from since a failover).
    reconcile_interval: float
    reconcile_retry_seconds: float
    # No new notebook on a machine going down for maintenance within this many seconds.
    maintenance_horizon: float
    # Where the secret is read from when the framework is made (``secret`` is then None).
    secret_file: str | None = None
    # The GPU queue (``gpuqueue``): its rules, where its state is kept, how often it looks.
    gpu_queue: QueuePolicy = QueuePolicy()
    gpu_state_file: str | None = None
    gpu_queue_tick: float = 5.0


class MesosFramework(EventHandler):
    """The shared framework, composed of owned parts: the scheduler ``client``, the cluster
    ``view`` (capacity, where tasks run), the orphan ``reaper`` and ``spark``, which tears
    down the Spark frameworks its notebooks start."""

    _instances: dict[tuple[str, str], MesosFramework] = {}

    def __init__(
        self,
        config: FrameworkConfig,
        client_factory=SchedulerClient,
        logger: logging.Logger | None = None,
    ) -> None:
        self.config = config
        self.log = logger or log
        self.pending: dict[str, LaunchRequest] = {}
        self.launching: dict[str, LaunchRequest] = {}  # task id -> request, until RUNNING
        self.tasks: dict[str, TaskRecord] = {}
        self.stops = StopNotes()  # why servers stopped, for the people's next visits
        self.suppressed: set[str] = set()
        self.reconciled = asyncio.Event()
        self.subscribed_once = asyncio.Event()
        # Why Mesos refuses this framework for good (another principal), once it has; set
        # ``answered`` as SUBSCRIBED does, so nobody waits for a subscription never to come.
        self.refusal: str | None = None
        self.answered = asyncio.Event()
        self._task_waiters: dict[str, list[asyncio.Event]] = {}
        self._started = False
        self._cluster_fetch: asyncio.Future | None = None
        self._unanswered: set[str] = set()  # explicitly reconciled, no answer yet
        self._asking = asyncio.Event()  # a reconciliation round awaits answers
        self._reconcile_loop: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self.metrics = framework_metrics()
        principal, secret = credentials.resolve(config.principal, config.secret, config.secret_file)
        info = identity.framework_info(config, principal)
        self.client = client_factory(
            config.master,
            info,
            self,
            principal=principal,
            secret=secret,
            ca_file=config.ca_file,
            log=self.log,
        )
        self.id_file = identity.FrameworkIdFile(config.id_file, config.master, self.log)
        self.saved = self.id_file.load()
        self.client.framework_id = self.saved.framework_id if self.saved else None
        self.view = ClusterView(self.tasks, self.client.get_json, self.log)
        self.reaper = OrphanReaper(
            self.tasks,
            self.kill,
            hub_id=config.hub_id,
            grace_seconds=config.orphan_grace_seconds,
            enabled=config.orphan_kill,
            log=self.log,
        )
        self.spark = SparkCleanup(
            self.client.get_json,
            self.client.operator_call,
            task_id_prefixes(config.hub_id),
            lambda task_id: record.state if (record := self.tasks.get(task_id)) else None,
            self.log,
        )
        self.gpu_queue = GpuQueue(
            config.gpu_queue,
            state_file=config.gpu_state_file,
            tasks=self.tasks,
            kill=self.kill,
            revive=lambda: self._revive(None),
            note_kill_reason=self.stops.note_kill,
            capacity=self.view.gpu_totals,
            reconciled=self.reconciled.is_set,
            tick=config.gpu_queue_tick,
            logger=self.log,
        )

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def shared(
        cls, config: FrameworkConfig, logger: logging.Logger | None = None
    ) -> MesosFramework:
        """The framework for this master and name in this process (created on first use)."""
        key = (config.master, config.name)
        fw = cls._instances.get(key)
        if fw is None:
            fw = cls._instances[key] = cls(config, logger=logger)
        return fw

    async def ensure_started(self, timeout: float | None = None) -> None:
        if not self._started:
            self._started = True
            await self.client.start()
        if timeout is not None:
            await asyncio.wait_for(self.subscribed_once.wait(), timeout)

    async def stop(self) -> None:
        """Close the stream; tasks keep running until ``failover_timeout`` (weeks by default)."""
        self.reaper.stop()
        self.spark.stop()
        self.gpu_queue.stop()
        for task in list(self._background):
            task.cancel()
        self._reconcile_loop = None
        await self.client.stop()
        self._started = False
        MesosFramework._instances.pop((self.config.master, self.config.name), None)

    # ------------------------------------------------------------------ spawner-facing API

    def track(self, record: TaskRecord) -> None:
        """Claim a task a spawner knows from saved state, so reconciliation reports on it."""
        known = self.tasks.get(record.task_id)
        if known is None:
            # What the spawner saved, not what Mesos says: unreconciled until Mesos answers.
            record.reconciled = False
            self.tasks[record.task_id] = record
        else:
            known.claimed = True
            for name in ("agent_id", "hostname", "ip"):
                if getattr(known, name) is None:
                    setattr(known, name, getattr(record, name))
            if not known.ports:
                known.ports = record.ports
        if self.client.subscribed and record.agent_id:
            self._spawn(self._safe(self.client.reconcile([(record.task_id, record.agent_id)])))

    def abandon(self, task_id: str) -> None:
        """The task's server is gone without ``stop()``: JupyterHub calls none once ``poll()``
        reports a server stopped. Nobody owns the task now; should it ever run again (its agent
        back after all) it is killed, on the update that brings it back or as an orphan."""
        record = self.tasks.get(task_id)
        if record is not None and record.claimed:
            record.claimed = False
            record.kill_wanted = True

    async def launch(self, req: LaunchRequest) -> TaskRecord:
        """Queue ``req`` and wait until its task runs; cancelling withdraws it (no late launch)."""
        if self.refusal:
            raise LaunchFailed(self.refusal)
        key = req.needs.key
        refused = self.gpu_queue.join(req)
        if refused:
            raise LaunchFailed(refused)
        self.pending[key] = req
        self.metrics["pending"].set(len(self.pending))
        req.observer.queued(req.needs)
        try:
            await self.ensure_started()
            if req.needs.role in self.view.quotas:
                # Its role's use now, so that a wait for the quota is told as one.
                await self.view.refresh_quotas()
            await self._revive(req.needs.role)
            return await asyncio.shield(req.future)
        except BaseException:
            await self.withdraw(req)
            raise

    async def withdraw(self, req: LaunchRequest) -> None:
        """Forget a request; kill its task if it was already launched."""
        self.pending.pop(req.needs.key, None)
        self.gpu_queue.leave(req)
        self.metrics["pending"].set(len(self.pending))
        if req.task_id:
            self.launching.pop(req.task_id, None)
            record = self.tasks.get(req.task_id)
            if record is not None and record.active:
                await self.kill(req.task_id)
        if not req.future.done():
            req.future.cancel()
        await self._maybe_suppress()

    def task(self, task_id: str) -> TaskRecord | None:
        return self.tasks.get(task_id)

    async def kill(self, task_id: str, timeout: float = 60.0) -> TaskRecord | None:
        """Kill a task and wait for a terminal state. Idempotent."""
        record = self.tasks.get(task_id)
        if record is None or record.state in TERMINAL_STATES:
            return record
        # From now on no spawner owns it: if it outlives this call (agent unreachable), it is
        # killed whenever Mesos reports it active again.
        record.claimed = False
        record.kill_wanted = True
        await self.ensure_started()
        deadline = time.monotonic() + timeout
        # Mesos answers a KILL of a task it cannot reach (unreachable, unknown) with that state
        # and resends the kill itself if the agent comes back (so does ``update``): no loop.
        while record.state in ACTIVE_STATES and time.monotonic() < deadline:
            try:
                await self.client.wait_subscribed(timeout=max(0.1, deadline - time.monotonic()))
                await self.client.kill(task_id, record.agent_id)
            except (TimeoutError, MesosError, OSError) as e:
                self.log.warning("Kill of %s not delivered yet: %s", task_id, e)
            await self.wait_change(task_id, min(10.0, max(0.1, deadline - time.monotonic())))
        if record.state not in TERMINAL_STATES and record.state not in ACTIVE_STATES:
            self.log.warning(
                "Task %s is %s: no kill reaches it now; it is killed if Mesos reports it again",
                task_id,
                record.describe(),
            )
        elif record.state not in TERMINAL_STATES:
            # Mesos resends no KILL: orphan cleanup keeps trying until a terminal state.
            retry = (
                f"orphan cleanup retries every {number(self.config.orphan_grace_seconds)} s"
                if self.config.orphan_kill
                else "orphan cleanup is off: it is killed when Mesos reports it again"
            )
            self.log.warning(
                "Kill of task %s on agent %s not confirmed after %g s (still %s); %s",
                task_id,
                record.hostname or record.agent_id,
                timeout,
                record.describe(),
                retry,
            )
            self.reaper.schedule()
        return record

    async def wait_change(self, task_id: str, timeout: float) -> None:
        event = asyncio.Event()
        self._task_waiters.setdefault(task_id, []).append(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            waiters = self._task_waiters.get(task_id, [])
            if event in waiters:
                waiters.remove(event)

    # ------------------------------------------------------------------ events

    async def subscribed(self, event: events.Subscribed) -> None:
        framework_id = event.framework_id
        user = self.config.user
        kept = identity.user_kept(self.saved, user, framework_id, self.config.id_file)
        if kept:
            self.log.warning("%s", kept)
            user = self.saved.user
        self.saved = identity.SavedIdentity(
            framework_id, self.config.principal, user, frozenset({"principal", "user"})
        )
        self.id_file.save(framework_id, self.config.principal, user)
        self.client.framework_id = framework_id
        self.log.info("Subscribed to Mesos as framework %s", framework_id)
        self.subscribed_once.set()
        self.answered.set()
        self.suppressed.clear()
        self.reconciled.clear()
        await self._reconcile()
        if self.pending:
            await self._revive(None)
        else:
            await self._maybe_suppress()
        self.reaper.schedule()
        if self._reconcile_loop is None or self._reconcile_loop.done():
            self._reconcile_loop = self._spawn(self._reconcile_periodically())
        if self._cluster_fetch is None or self._cluster_fetch.done():
            self._cluster_fetch = self._spawn(self._learn_cluster())

    async def _reconcile(self) -> None:
        """Implicit reconciliation (finds tasks nobody here knows, e.g. a crashed hub's) plus
        explicit for every task we believe active; ``reconciled`` is set once each of those
        has been answered."""
        explicit = [
            (t.task_id, t.agent_id)
            for t in self.tasks.values()
            if t.agent_id and t.state not in TERMINAL_STATES
        ]
        self._unanswered = {task_id for task_id, _ in explicit}
        await self._safe(self.client.reconcile([]))
        if explicit:
            await self._safe(self.client.reconcile(explicit))
        if self._unanswered:
            self._asking.set()
        else:
            self.reconciled.set()

    async def _reconcile_periodically(self) -> None:
        """Ask again about unanswered tasks (backing off), and reconcile everything every
        ``reconcile_interval`` seconds."""
        retry = self.config.reconcile_retry_seconds
        while True:
            if not self._unanswered:
                retry = self.config.reconcile_retry_seconds
                self._asking.clear()
                try:
                    # A new round (after a re-subscription) wakes the loop up early.
                    await asyncio.wait_for(self._asking.wait(), self.config.reconcile_interval)
                except TimeoutError:
                    if self.client.subscribed:
                        await self._reconcile()
                continue
            await asyncio.sleep(retry)
            if self._unanswered and self.client.subscribed:
                ask = [
                    (task_id, self.tasks[task_id].agent_id)
                    for task_id in self._unanswered
                    if task_id in self.tasks
                ]
                self.log.info("Reconciliation: asking again about %d unanswered tasks", len(ask))
                await self._safe(self.client.reconcile(ask))
                retry = min(retry * 2, self.config.reconcile_interval)

    def _spawn(self, coro) -> asyncio.Task:
        """Run ``coro`` in the background, owned: kept until done and its failure logged."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)
        return task

    def _background_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("Framework background task failed", exc_info=task.exception())

    async def disconnected(self, reason: str) -> None:
        self.log.warning("Lost the Mesos stream (%s); reconnecting", reason)

    async def error(self, event: events.Error) -> None:
        message = event.message
        self.log.error(
            "Mesos master reports an error for framework %s: %s", self.config.name, message
        )
        if "removed" in message.lower():
            self._removed()
        elif "principal" in message.lower() and "not allowed" in message.lower():
            await self._refused(message)

    def _removed(self) -> None:
        """The framework id is dead, and with it every task of the framework (Mesos killed
        them): forget the id so the next subscription gets a fresh one, and end every task
        this hub still counts on with the reason, whether or not Mesos has answered for it."""
        why = identity.removed(self.client.framework_id, self.config.failover_timeout)
        self.client.framework_id = None
        self.saved = None
        self.id_file.forget()
        for record in list(self.tasks.values()):
            if record.state in TERMINAL_STATES:
                continue
            self._set_state(record, "TASK_KILLED", why, "")
            self.view.released(record.task_id)
            req = self.launching.get(record.task_id)
            if req is not None:
                self._advance(req, record)

    async def _refused(self, message: str) -> None:
        """Mesos will never take this framework back as configured: say what changed, fail
        what waits, and stop re-subscribing (each try would be refused the same way)."""
        self.refusal = identity.principal_refused(
            self.saved,
            self.config.principal,
            self.client.framework_id,
            message,
            self.config.id_file,
        )
        self.log.error("%s", self.refusal)
        self.answered.set()
        for req in list(self.pending.values()):
            if not req.future.done():
                req.future.set_exception(LaunchFailed(self.refusal))
        self.pending.clear()
        await self.client.stop()

    async def offers(self, event: events.Offers) -> None:
        parsed = event.offers
        self.metrics["offers"].inc(len(parsed) + len(event.malformed))
        for offer_id, why in event.malformed:
            self.log.error("Declining malformed offer %s: %s", offer_id or "(no id)", why)
            if offer_id:
                await self._safe(self.client.decline([offer_id]))
        self.view.record_offers(parsed)
        # The GPU queue decides which GPU requests may take GPUs now, first in line first.
        requests = [r.needs for r in self.gpu_queue.order(self.pending.values())]
        placements = plc.place(
            requests,
            parsed,
            self.view.placed_tasks(),
            self.config.strategy,
            gpu_agents=self.view.gpu_agents(),
            now=time.time(),
            horizon=self.config.maintenance_horizon,
        )
        used_offers: dict[str, list[tuple[LaunchRequest, plc.Placement]]] = {}
        for p in placements:
            req = self.pending.get(p.request_key)
            if req is not None:
                used_offers.setdefault(p.offer_id, []).append((req, p))
        for offer_id, items in used_offers.items():
            await self._launch_on(offer_id, items)
        unused = [o.id for o in parsed if o.id not in used_offers]
        if unused:
            refuse = self.config.refuse_seconds if self.pending else self.config.idle_refuse_seconds
            self.metrics["declined"].inc(len(unused))
            await self._safe(self.client.decline(unused, {"refuse_seconds": refuse}))
        if self.pending:
            for req in self.pending.values():
                req.observer.waiting(req.needs, self._quota_wait(req.needs))
        await self._maybe_suppress()

    async def _launch_on(self, offer_id: str, items: list[tuple[LaunchRequest, plc.Placement]]):
        infos = []
        launched = []
        for req, p in items:
            try:
                info = taskinfo.build_task_info(req.spec, p, attempt=req.attempts)
            except Exception as e:  # a bad request must fail its own spawn, not the framework
                self.pending.pop(req.needs.key, None)
                if not req.future.done():
                    req.future.set_exception(LaunchFailed(f"Could not build the Mesos task: {e}"))
                continue
            task_id = value_of(info["task_id"])
            req.task_id = task_id
            req.attempts += 1
            self.pending.pop(req.needs.key, None)
            self.gpu_queue.launched(req, task_id)
            self.launching[task_id] = req
            self.tasks[task_id] = TaskRecord(
                task_id,
                agent_id=p.agent_id,
                hostname=p.hostname,
                ip=p.ip,
                ports=p.ports,
                updated=time.time(),
                resources=p.resources,
            )
            self.view.launched(task_id, p)
            infos.append(info)
            launched.append((req, p))
        if not infos:
            await self._safe(self.client.decline([offer_id], {"refuse_seconds": 0}))
            return
        try:
            await self.client.launch(
                [offer_id], infos, {"refuse_seconds": self.config.refuse_seconds}
            )
        except (TimeoutError, MesosError, OSError) as e:
            self.log.warning("ACCEPT of offer %s failed (%s); requeueing", offer_id, e)
            for req, _ in launched:
                self._requeue(req, f"the master refused the launch: {e}")
            return
        self.metrics["pending"].set(len(self.pending))
        for req, p in launched:
            self.log.info("Launched task %s on agent %s", req.task_id, p.hostname)
            req.observer.accepted(p, req.task_id)

    def _requeue(self, req: LaunchRequest, why: str) -> None:
        self.gpu_queue.requeued(req, req.task_id)
        if req.task_id:
            self.launching.pop(req.task_id, None)
            self.view.released(req.task_id)
        if req.future.done():
            return
        req.task_id = None
        self.pending[req.needs.key] = req
        req.observer.retry(why)
        self._spawn(self._revive(req.needs.role))

    async def rescind(self, event: events.Rescind) -> None:
        self.log.debug("Offer %s rescinded", event.offer_id)
        self.view.rescinded(event.offer_id)

    async def inverse_offers(self, event: events.InverseOffers) -> None:
        """Maintenance asks for agents back: yes only where none of our notebooks runs
        (``maintenance.answer``); asked again after ``idle_refuse_seconds``."""
        refuse = {"refuse_seconds": self.config.idle_refuse_seconds}
        for offer in event.inverse_offers:
            accept, why = maintenance.answer(offer, self.tasks.values())
            verb = "Accepting" if accept else "Declining"
            log = self.log.info if accept else self.log.warning
            log("%s the inverse offer %s: %s", verb, offer.id, why)
            await self._safe(self.client.answer_inverse_offers(accept, [offer.id], refuse))

    async def rescind_inverse_offer(self, event: events.RescindInverseOffer) -> None:
        self.log.info("Inverse offer %s withdrawn by the master", event.inverse_offer_id)

    async def update(self, status: events.TaskStatus) -> None:
        task_id = status.task_id
        if not task_id:
            return
        state = status.state
        record = self.tasks.get(task_id)
        if record is None:
            record = self.tasks[task_id] = TaskRecord(task_id, claimed=False)
        if status.agent_id:
            record.agent_id = status.agent_id
        reason, message = status.reason, status.message
        was_active = record.active
        self._set_state(record, state, message, reason)
        if task_id in self._unanswered:
            self._unanswered.discard(task_id)
            if not self._unanswered:
                self.reconciled.set()
        if record.kill_wanted and record.active and not was_active:
            # Back from a partition (TASK_RUNNING, REASON_AGENT_REREGISTERED) after its server
            # was stopped: kill it rather than leave a notebook (and its GPUs) running unowned.
            self.log.warning(
                "Task %s is %s again after its server was stopped; killing it",
                task_id,
                state,
            )
            self._spawn(self._send_kill(record))
        self.metrics["states"].labels(state=state).inc()
        self.view.noted(record)
        req = self.launching.get(task_id)
        if req is not None:
            self._advance(req, record)
        if state in TERMINAL_STATES:
            self.view.released(task_id)
            self.gpu_queue.ended(task_id)
        if not record.claimed and record.active:
            self.reaper.schedule()

    def _advance(self, req: LaunchRequest, record: TaskRecord) -> None:
        state = record.state
        if state == "TASK_RUNNING":
            self.launching.pop(record.task_id, None)
            elapsed = time.monotonic() - req.queued_at
            self.metrics["latency"].observe(elapsed)
            if not req.future.done():
                req.future.set_result(record)
            return
        if state in STARTING_STATES:
            req.observer.starting(record)
            return
        if state in STOPPED_STATES or state == "TASK_KILLING":
            self.launching.pop(record.task_id, None)
            if record.reason in RETRY_REASONS and req.attempts < OFFER_ATTEMPTS:
                self._requeue(req, f"the offer was no longer valid ({record.describe()})")
                return
            timed_out = registration_timed_out(record)
            if timed_out and req.registration_retries < 1:
                req.registration_retries += 1
                self.log.warning(
                    "Task %s: executor registration timed out on %s; retrying once",
                    record.task_id,
                    record.hostname or record.agent_id,
                )
                self._requeue(req, REGISTRATION_TIMEOUT_HINT)
                return
            why = f"Task {record.task_id} {record.describe()}"
            if timed_out:
                why += f" ({REGISTRATION_TIMEOUT_HINT})"
            if not req.future.done():
                req.future.set_exception(LaunchFailed(why))

    def _set_state(self, record: TaskRecord, state: str, message: str, reason: str) -> None:
        if state != record.state or not record.state_since:
            record.state_since = time.time()
        record.state = state
        record.message = message
        record.reason = reason
        record.updated = time.time()
        record.reconciled = True
        for event in self._task_waiters.pop(record.task_id, []):
            event.set()

    async def _send_kill(self, record: TaskRecord) -> None:
        await self._safe(self.client.kill(record.task_id, record.agent_id))

    async def failure(self, event: events.Failure) -> None:
        self.log.warning("Mesos failure event: %s", event.raw)

    # ------------------------------------------------------------------ offers flow control

    async def _revive(self, role: str | None) -> None:
        roles = [role] if role and role in self.config.roles else list(self.config.roles)
        if not self.client.subscribed:
            return  # subscribed() revives for whatever is pending
        self.suppressed.difference_update(roles)
        await self._safe(self.client.revive(roles))

    async def _maybe_suppress(self) -> None:
        if self.pending or not self.client.subscribed:
            return
        roles = [r for r in self.config.roles if r not in self.suppressed]
        if roles:
            self.suppressed.update(roles)
            await self._safe(self.client.suppress(roles))

    async def _safe(self, coro) -> None:
        try:
            await coro
        except (TimeoutError, MesosError, OSError) as e:
            self.log.warning("Mesos call failed: %s", e)

    # ------------------------------------------------------------------ the cluster

    async def _learn_cluster(self) -> None:
        """After a subscription: the agents' totals, and the agent and resources of every task
        still running (a hub restart's survivors), which reconciliation does not tell."""
        await self.view.refresh_totals()
        framework_id = self.client.framework_id
        seen = await self.view.tasks_of(framework_id) if framework_id else None
        for task in seen or ():
            self._adopt(task)

    def _adopt(self, task: TaskSeen) -> None:
        record = self.tasks.get(task.task_id)
        if record is None:
            # Reconciliation reports it too; until then it is nobody's (an orphan candidate).
            record = self.tasks[task.task_id] = TaskRecord(
                task.task_id, state=task.state, claimed=False
            )
            if record.active:
                self.reaper.schedule()
        if not record.resources:
            record.resources = task.resources
        if not record.agent_id and task.agent_id:
            record.agent_id = task.agent_id
        self.view.noted(record)

    async def refresh_capacity(self, max_age: float = 10.0, timeout: float = 2.0) -> None:
        """Make the cluster view at most ``max_age`` seconds old (see ``ClusterView.refresh``)."""
        await self.ensure_started()
        try:
            await asyncio.wait_for(self.answered.wait(), timeout)
        except TimeoutError:
            return
        if self.refusal:
            return
        if self._cluster_fetch is not None and not self._cluster_fetch.done():
            await asyncio.wait([self._cluster_fetch], timeout=timeout)
        await self.view.refresh(lambda: self._revive(None), max_age, timeout)

    def capacity(self) -> list[plc.AgentCapacity]:
        """What each agent holds and has free for a new notebook (nothing on a machine going
        down for maintenance within the horizon)."""
        return self.view.capacity(exclude=self._going_down())

    def _going_down(self) -> dict[str, tuple[str, events.Unavailability]]:
        return self.view.going_down(time.time(), self.config.maintenance_horizon)

    def quota(self, role: str) -> RoleQuota | None:
        """``role``'s quota limits and use, as last read from the master (None: no limit)."""
        return self.view.quotas.get(role)

    def _quota_wait(self, request: plc.Request) -> str | None:
        """The role's quota, when that is what ``request`` waits for."""
        quota = self.quota(request.role)
        return quota and plc.quota_shortfall(request, quota, self.capacity())

    def gpu_agents(self) -> set[str]:
        return self.view.gpu_agents()

    @property
    def totals_known(self) -> bool:
        return self.view.totals_known

    # ------------------------------------------------------------------ answers for spawners

    def why_waiting(self, req: LaunchRequest) -> str:
        """Why ``req`` has not started yet, for the person waiting."""
        record = self.task(req.task_id) if req.task_id else None
        if record is not None:
            return f"task {record.task_id} is still {record.describe()}"
        held = self._quota_wait(req.needs)
        if held:
            return f"waiting for {held}"
        short = plc.shortfall(req.needs, self.capacity())
        what = plc.describe(req.needs)
        why = f"no offer could hold {what}" + (f" ({short})" if short else "")
        down = self._going_down()
        if down:
            names = maintenance.going_down_words(down)
            why += f"; no new notebook starts on machines going down for maintenance ({names})"
        return why

    async def never_fits(self, request: plc.Request) -> str | None:
        """A reason no agent could ever hold ``request``, once the cluster has been seen."""
        try:
            await asyncio.wait_for(self.answered.wait(), 5)
        except TimeoutError:
            return None
        if self.refusal:
            return None  # not the cluster's doing: launch() fails saying why
        await self.refresh_capacity(max_age=30.0, timeout=3.0)
        fit = self.classify(request)
        return fit.why if fit.kind == "never" else None

    def classify(self, request: plc.Request) -> plc.Fit:
        """Can ``request`` start now, must it wait, or can it never start (as far as known)?"""
        return plc.classify(
            request,
            self.capacity(),
            totals_known=self.totals_known,
            quota=self.quota(request.role),
        )

    async def wait_reconciled(self, timeout: float) -> bool:
        """Wait until every task believed active has been answered for; False on timeout."""
        try:
            await asyncio.wait_for(self.reconciled.wait(), timeout)
        except TimeoutError:
            return False
        return True


__all__ = [
    "FrameworkConfig",
    "LaunchFailed",
    "LaunchObserver",
    "LaunchRequest",
    "MesosFramework",
    "SilentObserver",
    "TaskRecord",
]
