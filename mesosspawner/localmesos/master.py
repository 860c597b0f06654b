"""The master's state machine: frameworks, tasks, agents and status updates.

Transport-free: frameworks are reached through a ``Stream`` (``send(event)``, ``close()``) and
agents through an ``AgentLink``; timers use the running asyncio loop. ``handlers.py`` feeds it
calls, ``agent.py`` / ``remote_agent.py`` feed it registrations and status updates. The records
are in ``model.py``, offers in ``allocator.py``, call validation in ``validation.py`` and the
state.json rendering in ``state_json.py``. Hot paths are per-agent or per-task (no pass over all
tasks per offer), so 1,000 agents / 10,000 tasks stay cheap.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid as uuidlib
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from mesosspawner.mesos.resources import (
    UNRESERVED,
    Attribute,
    Resource,
    merge,
    resource_to_json,
    subtract,
)

from . import state_json
from .allocator import Allocator
from .authorization import TaskUsers, pwd_lookup, refusal
from .maintenance import Maintenance
from .model import (
    VERSION,
    Agent,
    AgentLink,
    Framework,
    Stream,
    Task,
    is_terminal,
    master_status,
    reconcile_status,
    resources_from_task,
    update_event,
)
from .operations import apply_offer_operation
from .validation import (
    InvalidTask,
    framework_update,
    id_value,
    validate_acknowledge,
    validate_framework_info,
    validate_task,
)

log = logging.getLogger("mesosspawner.localmesos.master")

DEFAULT_KILL_GRACE = 3.0
MAX_COMPLETED_FRAMEWORKS = 50


class CallError(Exception):
    """A call the master refuses with an HTTP status (400, 403, ...) and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# Accepted and answered 202, with nothing to do: no custom executors (MESSAGE, SHUTDOWN) and
# no operation feedback in localmesos.
_IGNORED_CALLS = frozenset(
    {"MESSAGE", "REQUEST", "SHUTDOWN", "ACKNOWLEDGE_OPERATION_STATUS", "RECONCILE_OPERATIONS"}
)


class Registry(Protocol):
    """Where the master records admitted agents so that the next leader knows them (Mesos's
    replicated registry; ZooKeeper in localmesos). Calls must not block."""

    def admit(self, agent_id: str) -> None: ...
    def mark_unreachable(self, agent_id: str) -> None: ...


def _nanos_to_seconds(d: object, default: float) -> float:
    if isinstance(d, dict) and "nanoseconds" in d:
        try:
            return max(int(d["nanoseconds"]) / 1e9, 0.0)
        except (TypeError, ValueError):
            return default
    return default


class Master:
    """All master state and rules. Call the methods from the event loop thread only."""

    def __init__(
        self,
        *,
        hostname: str = "127.0.0.1",
        ip: str = "127.0.0.1",
        port: int = 5050,
        heartbeat_interval: float = 15.0,
        offer_timeout: float | None = None,
        agent_unreachable_timeout: float = 75.0,
        allocation_interval: float = 1.0,
        agent_reregister_timeout: float = 600.0,
        master_id: str | None = None,
        task_users: TaskUsers | None = None,
    ) -> None:
        self.id = master_id or str(uuidlib.uuid4())
        # Who tasks may run as (authorization.py): never root unless allowed.
        self.task_users = task_users or TaskUsers()
        self.hostname = hostname
        self.ip = ip
        self.port = port
        self.heartbeat_interval = heartbeat_interval
        self.offer_timeout = offer_timeout
        self.agent_unreachable_timeout = agent_unreachable_timeout
        self.allocation_interval = allocation_interval
        self.start_time = time.time()
        self.elected_time: float | None = None
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: deque[Framework] = deque(maxlen=MAX_COMPLETED_FRAMEWORKS)
        self.removed_framework_ids: set[str] = set()
        self.agents: dict[str, Agent] = {}
        self.unreachable_agents: dict[str, float] = {}
        self.gone_agents: dict[str, float] = {}  # marked gone by the operator (operator_api)
        # Agents the registry knew at election that have not re-registered yet.
        self.recovered_agents: dict[str, asyncio.TimerHandle | None] = {}
        self.registry: Registry | None = None
        self.agent_reregister_timeout = agent_reregister_timeout
        self.allocator = Allocator(
            self.id,
            self.frameworks,
            self.agents,
            interval=allocation_interval,
            offer_timeout=offer_timeout,
        )
        self.maintenance = self.allocator.maintenance = Maintenance(self)
        self._fw_seq = itertools.count()
        self._agent_seq = itertools.count(0)

    # ------------------------------------------------------------------ lifecycle

    def start(self, registry_state: dict[str, str] | None = None) -> None:
        """Begin leading; ``registry_state`` maps agent ids to "admitted" / "unreachable"."""
        self.elected_time = time.time()
        for agent_id, state in (registry_state or {}).items():
            if state == "unreachable":
                self.unreachable_agents[agent_id] = time.time()
            else:
                self.recovered_agents[agent_id] = self._later(
                    self.agent_reregister_timeout, self._recovered_agent_expired, agent_id
                )
        self.allocator.start()

    def _recovered_agent_expired(self, agent_id: str) -> None:
        """A recovered agent did not re-register in time: unreachable, as Mesos marks it."""
        if self.recovered_agents.pop(agent_id, None) is None:
            return
        self.unreachable_agents[agent_id] = time.time()
        if self.registry is not None:
            self.registry.mark_unreachable(agent_id)
        for fw in self.frameworks.values():
            fw.send({"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}})

    def stop(self) -> None:
        self.allocator.stop()
        for fw in self.frameworks.values():
            if fw.failover_timer:
                fw.failover_timer.cancel()
            if fw.stream:
                fw.stream.close()
        for agent in self.agents.values():
            if agent.unreachable_timer:
                agent.unreachable_timer.cancel()
        for timer in self.recovered_agents.values():
            if timer is not None:
                timer.cancel()

    def master_info(self) -> dict:
        return {
            "id": self.id,
            "ip": _ip_to_int(self.ip),
            "port": self.port,
            "pid": f"master@{self.ip}:{self.port}",
            "hostname": self.hostname,
            "version": VERSION,
            "address": {"hostname": self.hostname, "ip": self.ip, "port": self.port},
        }

    def _later(self, delay: float, fn, *args) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, fn, *args)

    # ------------------------------------------------------------------ frameworks

    def subscribe(self, call: dict, stream: Stream, stream_id: str) -> Framework | None:
        """SUBSCRIBE: returns the framework, or None after sending ERROR and closing."""
        sub = call.get("subscribe") or {}
        info = sub.get("framework_info") or {}
        error = validate_framework_info(info)
        fid = id_value(info.get("id"))
        if error is None and fid and fid in self.removed_framework_ids:
            error = "Framework has been removed"
        if error is not None:
            stream.send({"type": "ERROR", "error": {"message": error}})
            stream.close()
            return None
        fw = self.frameworks.get(fid) if fid else None
        if fw is not None:
            info, error = framework_update(fw.info, info)
            if error is not None:
                stream.send({"type": "ERROR", "error": {"message": error}})
                stream.close()
                return None
        if fw is None:
            if not fid:
                fid = f"{self.id}-{next(self._fw_seq):04d}"
            fw = Framework(fid, info)
            self.frameworks[fid] = fw
        else:
            fw.set_info(info)
            fw.reregistered_time = time.time()
            if fw.stream is not None:
                old = fw.stream
                fw.stream = None
                old.send({"type": "ERROR", "error": {"message": "Framework failed over"}})
                old.close()
            # Mesos discards a failing-over framework's offers; allocation offers them anew.
            self.allocator.remove_offers(fw, rescind=False)
        fw.recovered = False
        if fw.failover_timer:
            fw.failover_timer.cancel()
            fw.failover_timer = None
        fw.stream = stream
        fw.stream_id = stream_id
        suppressed = sub.get("suppressed_roles") or []
        fw.suppressed = {r for r in suppressed if r in fw.roles}
        stream.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": {"value": fw.id},
                    "heartbeat_interval_seconds": self.heartbeat_interval,
                    "master_info": self.master_info(),
                },
            }
        )
        self.allocator.schedule()
        return fw

    def stream_closed(self, fw_id: str, stream: Stream) -> None:
        """The framework's event stream broke: keep its tasks until failover_timeout."""
        fw = self.frameworks.get(fw_id)
        if fw is None or fw.stream is not stream:
            return
        fw.stream = None
        fw.stream_id = None
        fw.unregistered_time = time.time()
        self.allocator.remove_offers(fw, rescind=False)
        timeout = fw.failover_timeout
        fw.failover_timer = self._later(timeout, self._failover_expired, fw.id)

    def _failover_expired(self, fw_id: str) -> None:
        fw = self.frameworks.get(fw_id)
        if fw is not None and not fw.connected:
            log.info("framework %s: failover timeout expired, removing it", fw_id)
            self.remove_framework(fw)

    def remove_framework(self, fw: Framework) -> None:
        """TEARDOWN / failover timeout: kill every task and forget the framework."""
        if fw.failover_timer:
            fw.failover_timer.cancel()
            fw.failover_timer = None
        self.allocator.remove_offers(fw, rescind=False)
        agents = {t.agent_id for t in fw.tasks.values()} | {
            t.agent_id for t in fw.unreachable_tasks.values()
        }
        for agent_id in agents:
            agent = self.agents.get(agent_id)
            if agent is not None and agent.connected:
                agent.link.shutdown_framework(fw.id)
        for task in list(fw.tasks.values()):
            if not is_terminal(task.state):
                task.state = "TASK_KILLED"
            self._remove_task(task)
        fw.unreachable_tasks.clear()
        self.frameworks.pop(fw.id, None)
        self.removed_framework_ids.add(fw.id)
        self.completed_frameworks.append(fw)
        fw.unregistered_time = time.time()
        if fw.stream is not None:
            stream = fw.stream
            fw.stream = None
            stream.close()
        self.allocator.schedule()

    def framework_for_call(self, call: dict, stream_id: str | None) -> Framework:
        """The 403/400 rules Mesos applies to every non-SUBSCRIBE call."""
        fid = id_value(call.get("framework_id"))
        if not fid:
            raise CallError(400, "Expecting 'framework_id' to be present")
        fw = self.frameworks.get(fid)
        if fw is None:
            raise CallError(400, "Framework cannot be found")
        if not fw.connected:
            raise CallError(403, "Framework is not subscribed")
        if stream_id is None:
            raise CallError(
                400, "All non-subscribe calls should include the 'Mesos-Stream-Id' header"
            )
        if stream_id != fw.stream_id:
            raise CallError(
                400,
                f"The stream ID '{stream_id}' included in this request didn't match the stream ID "
                f"currently associated with framework ID {fid}",
            )
        return fw

    def handle_call(self, fw: Framework, call: dict) -> None:
        kind = call.get("type")
        if kind in _IGNORED_CALLS:
            return
        handler = {
            "TEARDOWN": lambda: self.remove_framework(fw),
            "ACCEPT": lambda: self.accept(fw, call.get("accept") or {}),
            "DECLINE": lambda: self.allocator.decline(fw, call.get("decline") or {}),
            "REVIVE": lambda: self.allocator.revive(
                fw, (call.get("revive") or {}).get("roles") or []
            ),
            "SUPPRESS": lambda: self.allocator.suppress(
                fw, (call.get("suppress") or {}).get("roles") or []
            ),
            "KILL": lambda: self.kill(fw, call.get("kill") or {}),
            "ACKNOWLEDGE": lambda: self.acknowledge(fw, call.get("acknowledge") or {}),
            "RECONCILE": lambda: self.reconcile(
                fw, (call.get("reconcile") or {}).get("tasks") or []
            ),
            "UPDATE_FRAMEWORK": lambda: self.update_framework(
                fw, call.get("update_framework") or {}
            ),
            "ACCEPT_INVERSE_OFFERS": lambda: self.maintenance.answer(
                fw, kind, call.get("accept_inverse_offers") or {}
            ),
            "DECLINE_INVERSE_OFFERS": lambda: self.maintenance.answer(
                fw, kind, call.get("decline_inverse_offers") or {}
            ),
        }.get(kind)
        if handler is None:
            raise CallError(400, f"Unknown call type {kind!r}")
        handler()

    def update_framework(self, fw: Framework, body: dict) -> None:
        info = body.get("framework_info") or {}
        error = validate_framework_info(info)
        if error:
            raise CallError(400, error)
        if id_value(info.get("id")) != fw.id:
            raise CallError(400, "'framework_info.id' must match the framework's id")
        fw.set_info(info)
        fw.suppressed = {r for r in (body.get("suppressed_roles") or []) if r in fw.roles}
        for offer in list(fw.offers.values()):
            if offer.role not in fw.roles:
                self.allocator.remove_offer(offer, rescind=True)
        self.allocator.schedule()

    # ------------------------------------------------------------------ calls

    def accept(self, fw: Framework, body: dict) -> None:
        offer_ids = [id_value(o) or "" for o in body.get("offer_ids") or []]
        operations = body.get("operations") or []
        filters = body.get("filters") or {}
        # In order: ("LAUNCH", TaskInfo) or ("RESERVE" / "UNRESERVE", the operation's body).
        steps: list[tuple[str, dict]] = []
        for op in operations:
            if not isinstance(op, dict):
                continue
            if op.get("type") == "LAUNCH":
                tasks = (op.get("launch") or {}).get("task_infos") or []
                steps.extend(("LAUNCH", t) for t in tasks)
            elif op.get("type") in ("RESERVE", "UNRESERVE"):
                steps.append((op["type"], op.get(op["type"].lower()) or {}))
            elif op.get("type") == "LAUNCH_GROUP":
                group = (op.get("launch_group") or {}).get("task_group") or {}
                for t in group.get("tasks") or []:
                    self._master_update(
                        fw,
                        t,
                        "TASK_ERROR",
                        "REASON_TASK_GROUP_INVALID",
                        "localmesos does not support task groups (LAUNCH_GROUP)",
                    )
        launches = [t for kind, t in steps if kind == "LAUNCH"]
        offers, error = self.allocator.take(fw, offer_ids)
        if error is not None:
            state = "TASK_DROPPED" if fw.partition_aware else "TASK_LOST"
            for t in launches:
                self._master_update(
                    fw,
                    t,
                    state,
                    "REASON_INVALID_OFFERS",
                    f"Task launched with invalid offers: {error}",
                )
            self.allocator.schedule()
            return
        agent = self.agents.get(offers[0].agent_id)
        role = offers[0].role
        pool = merge(r for o in offers for r in o.resources)
        seen: set[str] = set()
        for kind, t in steps:
            if kind != "LAUNCH":
                if agent is not None and agent.connected:
                    pool = apply_offer_operation(self, fw, agent, role, pool, kind, t)
                continue
            if agent is None or not agent.connected:
                state = "TASK_DROPPED" if fw.partition_aware else "TASK_LOST"
                self._master_update(fw, t, state, "REASON_AGENT_REMOVED", "Agent is gone")
                continue
            try:
                res = validate_task(t, agent.id, role, pool, (fw.tasks, fw.unreachable_tasks, seen))
            except InvalidTask as e:
                self._master_update(fw, t, "TASK_ERROR", "REASON_TASK_INVALID", str(e))
                continue
            why = refusal(t, str(fw.info.get("user") or ""), self.task_users, pwd_lookup)
            if why:
                self._master_update(fw, t, "TASK_ERROR", "REASON_TASK_UNAUTHORIZED", why)
                continue
            pool = subtract(pool, res)
            tid = id_value(t.get("task_id")) or ""
            seen.add(tid)
            self._launch(fw, agent, role, t, res)
        if pool and offers:
            self.allocator.add_filter(fw, offers[0], pool, filters)
        self.allocator.schedule()

    def _launch(
        self, fw: Framework, agent: Agent, role: str, info: dict, res: list[Resource]
    ) -> None:
        tid = id_value(info["task_id"]) or ""
        task = Task(
            task_id=tid,
            framework_id=fw.id,
            agent_id=agent.id,
            name=str(info.get("name") or ""),
            role=role,
            resources=res,
            info=info,
        )
        fw.tasks[tid] = task
        agent.tasks[(fw.id, tid)] = task
        agent.add_used(res)
        launch_info = dict(info)
        launch_info["resources"] = [resource_to_json(r, allocation_role=role) for r in res]
        launch_info["agent_id"] = {"value": agent.id}
        agent.link.launch(fw.info, launch_info)

    def _master_update(
        self, fw: Framework, task_info: dict, state: str, reason: str, message: str
    ) -> None:
        tid = id_value(task_info.get("task_id")) or ""
        aid = id_value(task_info.get("agent_id"))
        fw.send(update_event(master_status(tid, state, reason, message, aid)))

    def kill(self, fw: Framework, body: dict) -> None:
        tid = id_value(body.get("task_id"))
        if not tid:
            raise CallError(400, "Expecting 'kill.task_id' to be present")
        task = fw.tasks.get(tid)
        if task is None or is_terminal(task.state):
            # Mesos answers a kill of an unknown task with a reconciliation of that task.
            self.reconcile(fw, [{"task_id": {"value": tid}, "agent_id": body.get("agent_id")}])
            return
        agent = self.agents.get(task.agent_id)
        if agent is None:
            return
        policy = body.get("kill_policy") or (task.info.get("kill_policy") or {})
        grace = _nanos_to_seconds(policy.get("grace_period"), DEFAULT_KILL_GRACE)
        # Remembered even when connected: the agent may be partitioned without the master
        # knowing yet. Sent again when it re-registers with the task still alive.
        agent.killed_tasks[(fw.id, tid)] = grace
        if agent.connected:
            agent.link.kill(fw.id, tid, grace)

    def acknowledge(self, fw: Framework, body: dict) -> None:
        error = validate_acknowledge(body)
        if error:
            raise CallError(400, error)
        tid = id_value(body.get("task_id")) or ""
        aid = id_value(body.get("agent_id")) or ""
        raw = body["uuid"]
        agent = self.agents.get(aid)
        if agent is None:
            return  # Mesos drops acks for unknown agents
        if agent.connected:
            agent.link.acknowledge(fw.id, tid, raw)
        task = fw.tasks.get(tid)
        if (
            task is not None
            and task.status_update_uuid == raw
            and task.status_update_state is not None
            and is_terminal(task.status_update_state)
        ):
            self._remove_task(task)

    def reconcile(self, fw: Framework, tasks: list[dict]) -> None:
        updates: list[dict] = []
        if not tasks:
            # Implicit: Mesos answers for framework->tasks (not the unreachable ones).
            for task in fw.tasks.values():
                updates.append(reconcile_status(task))
        for entry in tasks:
            tid = id_value((entry or {}).get("task_id"))
            if not tid:
                continue
            aid = id_value((entry or {}).get("agent_id"))
            task = fw.tasks.get(tid)
            if task is not None:
                updates.append(reconcile_status(task))
                continue
            pa = fw.partition_aware
            if (aid and aid in self.recovered_agents) or (not aid and self.recovered_agents):
                continue  # Mesos stays silent until the agent re-registers (or times out)
            if aid and aid in self.agents:
                state, msg = (
                    ("TASK_GONE" if pa else "TASK_LOST"),
                    "Reconciliation: Task is unknown to the agent",
                )
            elif aid and aid in self.unreachable_agents:
                state, msg = (
                    ("TASK_UNREACHABLE" if pa else "TASK_LOST"),
                    "Reconciliation: Task is unreachable",
                )
            elif aid and aid in self.gone_agents:
                state = "TASK_GONE_BY_OPERATOR" if pa else "TASK_LOST"
                msg = "Reconciliation: Task is gone"
            else:
                state, msg = (
                    ("TASK_UNKNOWN" if pa else "TASK_LOST"),
                    "Reconciliation: Task is unknown",
                )
            updates.append(master_status(tid, state, "REASON_RECONCILIATION", msg, aid))
        for status in updates:
            fw.send(update_event(status))

    # ------------------------------------------------------------------ tasks

    def _remove_task(self, task: Task) -> None:
        fw = self.frameworks.get(task.framework_id)
        agent = self.agents.get(task.agent_id)
        if not task.resources_released and agent is not None:
            agent.release_used(task.resources)
            task.resources_released = True
        if agent is not None:
            agent.tasks.pop((task.framework_id, task.task_id), None)
            agent.killed_tasks.pop((task.framework_id, task.task_id), None)
        if fw is not None:
            fw.tasks.pop(task.task_id, None)
            fw.unreachable_tasks.pop(task.task_id, None)
            fw.completed_tasks.append(task)
        self.maintenance.check_drained(agent)
        self.allocator.schedule()

    def agent_status_update(
        self, agent_id: str, fw_id: str, status: dict, latest_state: str | None = None
    ) -> None:
        """An agent's status update (with uuid): record it, forward it if the framework listens."""
        agent = self.agents.get(agent_id)
        fw = self.frameworks.get(fw_id)
        tid = id_value(status.get("task_id")) or ""
        task = fw.tasks.get(tid) if fw else None
        if agent is None:
            return
        if fw is None or task is None:
            # Framework gone (removed) or unknown: ack on its behalf so the agent stops retrying.
            if fw_id in self.removed_framework_ids and status.get("uuid"):
                agent.link.acknowledge(fw_id, tid, status["uuid"])
            return
        status, latest_state = self.maintenance.draining_update(agent, fw, status, latest_state)
        task.state = latest_state or status.get("state", task.state)
        task.status_update_state = status.get("state")
        task.status_update_uuid = status.get("uuid")
        task.latest_status = status
        if task.statuses and task.statuses[-1].get("state") == status.get("state"):
            task.statuses[-1] = status  # a retry or a health change of the same state
        else:
            task.statuses.append(status)
        if is_terminal(task.state) and not task.resources_released:
            agent.release_used(task.resources)
            task.resources_released = True
            self.allocator.schedule()
        fw.send(update_event(status))

    # ------------------------------------------------------------------ agents

    def register_agent(
        self,
        hostname: str,
        resources: list[Resource],
        attributes: list[Attribute],
        link: AgentLink,
        *,
        port: int = 5051,
        agent_id: str | None = None,
        tasks: Iterable[dict] = (),
        frameworks: Iterable[dict] = (),
        ip: str = "127.0.0.1",
    ) -> str:
        """Register (or re-register, with ``agent_id`` and running ``tasks``) an agent."""
        if agent_id and agent_id in self.gone_agents:
            # Mesos refuses it and tells it to shut down: nothing it runs is anyone's now.
            log.warning("agent %s (%s) was marked gone: shutting it down", agent_id, hostname)
            for fid in {id_value(t.get("framework_id")) or "" for t in tasks}:
                link.shutdown_framework(fid)
            return agent_id
        if agent_id and agent_id in self.agents:
            agent = self.agents[agent_id]
            agent.link = link
            agent.connected = True
            if agent.unreachable_timer:
                agent.unreachable_timer.cancel()
                agent.unreachable_timer = None
            self._resend_kills(agent, tasks)
            self.allocator.schedule()
            return agent_id
        if not agent_id:
            agent_id = f"{self.id}-S{next(self._agent_seq)}"
        was_unreachable = self.unreachable_agents.pop(agent_id, None) is not None
        timer = self.recovered_agents.pop(agent_id, None)
        if timer is not None:
            timer.cancel()
        if self.registry is not None:
            self.registry.admit(agent_id)
        agent = Agent(agent_id, hostname, port, resources, attributes, link, ip)
        self.agents[agent_id] = agent
        infos = {id_value(f.get("id")): f for f in frameworks if isinstance(f, dict)}
        # As Mesos: an agent the master did not expect (it was unreachable, or is unknown)
        # brings its tasks back, and each framework hears their state again.
        message = None
        if timer is None:
            message = (
                "Unreachable agent re-reregistered"
                if was_unreachable
                else "Unknown agent reregistered"
            )
        for t in tasks:
            task = self._recover_task(agent, t, infos)
            if task is not None and message is not None:
                self._reregistered_update(task, message)
        self.allocator.schedule()
        return agent_id

    def _resend_kills(self, agent: Agent, tasks: Iterable[dict]) -> None:
        alive = {
            (id_value(t.get("framework_id")), id_value((t.get("task_info") or {}).get("task_id")))
            for t in tasks
            if not is_terminal(t.get("state") or "TASK_STAGING")
        }
        for key, grace in list(agent.killed_tasks.items()):
            if key in alive:
                agent.link.kill(key[0], key[1], grace)
        for fid, tid in alive - set(agent.tasks):
            # Declared lost while the agent was away (its framework does not checkpoint):
            # nobody owns it any more.
            agent.link.kill(fid or "", tid or "", 0)

    def _reregistered_update(self, task: Task, message: str) -> None:
        fw = self.frameworks.get(task.framework_id)
        if fw is None or not fw.connected:
            return  # Mesos drops it; the framework reconciles when it comes back
        status = master_status(
            task.task_id, task.state, "REASON_AGENT_REREGISTERED", message, task.agent_id
        )
        container = (task.latest_status or {}).get("container_status")
        if container:
            status["container_status"] = container
        fw.send(update_event(status))

    def _recover_task(self, agent: Agent, t: dict, infos: dict) -> Task | None:
        """A task an agent brings back when it re-registers (master failover / partition heal)."""
        fid = id_value(t.get("framework_id")) or ""
        info = t.get("task_info") or {}
        tid = id_value(info.get("task_id")) or ""
        fw = self.frameworks.get(fid)
        if fw is None:
            if fid in self.removed_framework_ids:
                agent.link.shutdown_framework(fid)
                return None
            fw = Framework(fid, infos.get(fid) or {"user": "", "name": ""})
            fw.recovered = True
            self.frameworks[fid] = fw
            fw.failover_timer = self._later(fw.failover_timeout, self._failover_expired, fid)
        # Tasks the master had declared lost come back, for every framework (master.cpp:
        # "Avoid tracking a task as both terminal and non-terminal").
        for old in [c for c in fw.completed_tasks if c.task_id == tid]:
            fw.completed_tasks.remove(old)
        res = resources_from_task(info)
        role = t.get("role") or UNRESERVED
        task = Task(tid, fid, agent.id, str(info.get("name") or ""), role, res, info)
        task.state = t.get("state") or "TASK_STAGING"
        task.statuses = list(t.get("statuses") or [])
        task.latest_status = task.statuses[-1] if task.statuses else None
        fw.unreachable_tasks.pop(tid, None)
        fw.tasks[tid] = task
        agent.tasks[(fid, tid)] = task
        if is_terminal(task.state):
            task.resources_released = True
        else:
            agent.add_used(res)
        return task

    def agent_disconnected(self, agent_id: str) -> None:
        """The agent stopped answering: rescind its offers; unreachable after the timeout."""
        agent = self.agents.get(agent_id)
        if agent is None or not agent.connected:
            return
        agent.connected = False
        self.allocator.remove_agent_offers(agent_id)
        # Mesos (Master::exited): the tasks of frameworks that do not checkpoint cannot
        # survive an agent restart, so they are lost at once; the others wait for the agent.
        for task in list(agent.tasks.values()):
            fw = self.frameworks.get(task.framework_id)
            if fw is None or fw.info.get("checkpoint") or is_terminal(task.state):
                continue
            status = master_status(
                task.task_id,
                "TASK_LOST",
                "REASON_AGENT_DISCONNECTED",
                f"Agent {agent.hostname} disconnected",
                agent_id,
                executor_id={"value": task.task_id},
            )
            task.record_master_status(status)
            self._remove_task(task)
            fw.send(update_event(status))
        self.agent_unresponsive(agent_id)

    def agent_unresponsive(self, agent_id: str) -> None:
        """The agent stopped answering pings (its connection may look fine): unreachable
        after the timeout unless it re-registers first."""
        agent = self.agents.get(agent_id)
        if agent is None or agent.unreachable_timer is not None:
            return
        agent.unreachable_timer = self._later(
            self.agent_unreachable_timeout, self.mark_unreachable, agent_id
        )

    def mark_unreachable(self, agent_id: str) -> None:
        agent = self.agents.pop(agent_id, None)
        if agent is None:
            return
        agent.unreachable_timer = None
        self.unreachable_agents[agent_id] = time.time()
        if self.registry is not None:
            self.registry.mark_unreachable(agent_id)
        self.allocator.remove_agent_offers(agent_id)
        for task in list(agent.tasks.values()):
            fw = self.frameworks.get(task.framework_id)
            if fw is None or is_terminal(task.state):
                continue
            state = "TASK_UNREACHABLE" if fw.partition_aware else "TASK_LOST"
            status = master_status(
                task.task_id, state, "REASON_AGENT_REMOVED", "health check timed out", agent_id
            )
            if fw.partition_aware:
                status["unreachable_time"] = {"nanoseconds": int(time.time() * 1e9)}
            task.record_master_status(status)
            task.resources_released = True
            fw.tasks.pop(task.task_id, None)
            if fw.partition_aware:
                fw.unreachable_tasks[task.task_id] = task
            else:
                fw.completed_tasks.append(task)
            fw.send(update_event(status))
        for fw in self.frameworks.values():
            fw.send({"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}})
        self.allocator.schedule()

    # ------------------------------------------------------------------ state.json

    def state_json(self, *, leader_info: dict | None = None, flags: dict | None = None) -> dict:
        return state_json.master_state(self, leader_info=leader_info, flags=flags)


def _ip_to_int(ip: str) -> int:
    """MasterInfo.ip: the IPv4 address as a uint32 in network byte order (as Mesos stores it)."""
    parts = [int(p) for p in ip.split(".")]
    return parts[0] | parts[1] << 8 | parts[2] << 16 | parts[3] << 24
