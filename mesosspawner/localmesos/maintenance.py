"""Maintenance and draining, as Mesos 1.11's master does them (``docs/maintenance.md``,
``src/master/maintenance.cpp``, ``Master::Http::*MaintenanceSchedule``/``drainAgent`` in
``src/master/http.cpp``, ``generateInverseOffers`` in the hierarchical allocator).

- The schedule (``POST /master/maintenance/schedule``, ``UPDATE_MAINTENANCE_SCHEDULE``): windows
  of machines (``{hostname, ip}``; an agent's machine is its hostname, compared without case,
  and its IP) and their ``unavailability``. A machine in it is DRAINING: offers of its agents
  carry the unavailability, and every framework with resources there (offered or used) gets an
  inverse offer, once, until it answers (``ACCEPT_INVERSE_OFFERS``/``DECLINE_INVERSE_OFFERS``,
  shown in ``/master/maintenance/status``); an answer filters the next one for
  ``refuse_seconds`` (default 5). A change of a machine's window rescinds its agents' offers
  and inverse offers.
- Draining (``DRAIN_AGENT``, Mesos 1.9+): refused for an agent in the schedule; the agent is
  deactivated (no offers), its offers rescinded and each task killed (the kill policy's grace,
  at most ``max_grace_period``). Its tasks' TASK_KILLING and TASK_KILLED updates carry
  ``REASON_AGENT_DRAINING`` (``mark_gone``: TASK_GONE_BY_OPERATOR for partition-aware
  frameworks); once no task is left the agent is DRAINED, until ``REACTIVATE_AGENT``.

Not modelled: machines DOWN and UP (``/machine/down``, ``/machine/up``), the removal of a
drained ``mark_gone`` agent, and the registry (a new leader starts with no schedule).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .allocator import DEFAULT_REFUSE_SECONDS, _later, _loop_time
from .model import is_terminal
from .validation import id_value

if TYPE_CHECKING:
    from .master import Master
    from .model import Agent, Framework

Machine = tuple[str, str]  # (hostname in lower case, ip)


class MaintenanceError(Exception):
    """A refused operator call: the HTTP status and Mesos's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class InverseOfferRecord:
    offer_id: str
    framework_id: str
    agent_id: str


def _machine(machine_id: dict) -> Machine:
    return (str(machine_id.get("hostname") or "").lower(), str(machine_id.get("ip") or ""))


def _nanos(value: object) -> int:
    return int((value or {}).get("nanoseconds", 0)) if isinstance(value, dict) else 0


def validate_schedule(schedule: object) -> None:
    """``maintenance::validation::schedule``; ``MaintenanceError`` (400) names the problem."""
    if not isinstance(schedule, dict) or not isinstance(schedule.get("windows", []), list):
        raise MaintenanceError(400, "A maintenance schedule is an object with a 'windows' list")
    seen: set[Machine] = set()
    for i, window in enumerate(schedule.get("windows", [])):
        if not isinstance(window, dict):
            raise MaintenanceError(400, f"windows[{i}] must be an object")
        if "unavailability" not in window:
            raise MaintenanceError(400, f"Missing required fields: windows[{i}].unavailability")
        machines = window.get("machine_ids") or []
        if not machines:
            raise MaintenanceError(400, "List of machines in the maintenance window is empty")
        unavailability = window["unavailability"]
        if not isinstance(unavailability, dict) or "start" not in unavailability:
            raise MaintenanceError(
                400, f"Missing required fields: windows[{i}].unavailability.start"
            )
        if _nanos(unavailability.get("duration")) < 0:
            raise MaintenanceError(400, "Unavailability 'duration' is negative")
        for machine_id in machines:
            if not isinstance(machine_id, dict) or not (
                machine_id.get("hostname") or machine_id.get("ip")
            ):
                raise MaintenanceError(400, "Both 'hostname' and 'ip' for a machine are empty")
            key = _machine(machine_id)
            if key in seen:
                raise MaintenanceError(
                    400,
                    f"Machine '{json.dumps(machine_id, separators=(',', ':'))}'"
                    " appears more than once in the schedule",
                )
            seen.add(key)


class Maintenance:
    """The master's maintenance schedule, inverse offers, and agents' drain state."""

    def __init__(self, master: Master) -> None:
        self.master = master
        self.schedule: dict = {}
        self.windows: dict[Machine, dict] = {}  # machine -> (the window's machine id, unavail.)
        # machine -> framework id -> (ACCEPT | DECLINE, when): the answers to inverse offers.
        self.statuses: dict[Machine, dict[str, tuple[str, float]]] = {}
        self.inverse: dict[str, InverseOfferRecord] = {}
        self.filters: dict[tuple[str, str], float] = {}  # (agent, framework) -> loop time

    # ------------------------------------------------------------------ the schedule

    def machine_of(self, agent: Agent) -> Machine:
        return (agent.hostname.lower(), agent.ip)

    def unavailability(self, agent: Agent) -> dict | None:
        window = self.windows.get(self.machine_of(agent))
        return window["unavailability"] if window else None

    def update_schedule(self, schedule: object) -> None:
        validate_schedule(schedule)
        assert isinstance(schedule, dict)
        windows = {}
        for window in schedule.get("windows", []):
            for machine_id in window["machine_ids"]:
                windows[_machine(machine_id)] = {
                    "id": machine_id,
                    "unavailability": window["unavailability"],
                }
        self.schedule = schedule if schedule.get("windows") else {}
        for machine in set(self.windows) - set(windows):
            self.statuses.pop(machine, None)
        self.windows = windows
        allocator = self.master.allocator
        for agent in list(self.master.agents.values()):
            # As Mesos (``updateUnavailability`` of every known machine, in the schedule or
            # not): frameworks hear of any change at once, with new offers and inverse offers.
            allocator.remove_agent_offers(agent.id)
        allocator.schedule()

    def status_json(self) -> dict:
        """``GET /master/maintenance/status`` (a ``ClusterStatus``): draining machines and the
        frameworks' answers to their inverse offers."""
        draining = []
        for machine, window in self.windows.items():
            entry: dict = {"id": window["id"]}
            answers = self.statuses.get(machine) or {}
            if answers:
                entry["statuses"] = [
                    {
                        "framework_id": {"value": fid},
                        "status": status,
                        "timestamp": {"nanoseconds": int(at * 1e9)},
                    }
                    for fid, (status, at) in sorted(answers.items())
                ]
            draining.append(entry)
        return {"draining_machines": draining} if draining else {}

    # ------------------------------------------------------------------ inverse offers

    def generate(self, next_id) -> None:
        """After an allocation pass: an inverse offer to each active framework with resources
        offered or used on an agent of a machine in the schedule, unless one is outstanding
        or its last answer's filter holds."""
        if not self.windows:
            return
        master = self.master
        outstanding = {(io.agent_id, io.framework_id) for io in self.inverse.values()}
        now = _loop_time()
        batches: dict[str, list[dict]] = {}
        for agent in master.agents.values():
            unavailability = self.unavailability(agent)
            if unavailability is None or not agent.connected:
                continue
            holders = {fid for (fid, _), t in agent.tasks.items() if not t.resources_released} | {
                o.framework_id for o in master.allocator.offers.values() if o.agent_id == agent.id
            }
            for fid in sorted(holders):
                fw = master.frameworks.get(fid)
                key = (agent.id, fid)
                if fw is None or not fw.connected or key in outstanding:
                    continue
                if self.filters.get(key, 0.0) > now:
                    continue
                self.filters.pop(key, None)
                record = InverseOfferRecord(next_id(), fid, agent.id)
                self.inverse[record.offer_id] = record
                batches.setdefault(fid, []).append(
                    {
                        "id": {"value": record.offer_id},
                        "url": {
                            "scheme": "http",
                            "address": {
                                "hostname": agent.hostname,
                                "ip": agent.ip,
                                "port": agent.port,
                            },
                            "path": "/slave(1)",
                        },
                        "framework_id": {"value": fid},
                        "agent_id": {"value": agent.id},
                        "unavailability": unavailability,
                    }
                )
        for fid, items in batches.items():
            master.frameworks[fid].send(
                {"type": "INVERSE_OFFERS", "inverse_offers": {"inverse_offers": items}}
            )

    def answer(self, fw: Framework, kind: str, body: dict) -> None:
        """ACCEPT_INVERSE_OFFERS / DECLINE_INVERSE_OFFERS; unknown ids are ignored."""
        status = "ACCEPT" if kind == "ACCEPT_INVERSE_OFFERS" else "DECLINE"
        try:
            refuse = float(
                (body.get("filters") or {}).get("refuse_seconds", DEFAULT_REFUSE_SECONDS)
            )
        except (TypeError, ValueError):
            refuse = DEFAULT_REFUSE_SECONDS
        for raw in body.get("inverse_offer_ids") or []:
            record = self.inverse.get(id_value(raw) or "")
            if record is None or record.framework_id != fw.id:
                continue
            del self.inverse[record.offer_id]
            agent = self.master.agents.get(record.agent_id)
            if agent is not None:
                machine = self.machine_of(agent)
                self.statuses.setdefault(machine, {})[fw.id] = (status, time.time())
            if refuse > 0:
                self.filters[(record.agent_id, fw.id)] = _loop_time() + refuse
                _later(refuse + 0.001, self.master.allocator.schedule)
        self.master.allocator.schedule()

    def agent_gone(self, agent_id: str) -> None:
        """Rescind the inverse offers of ``agent_id`` (removed, or its window changed)."""
        for record in [r for r in self.inverse.values() if r.agent_id == agent_id]:
            self._rescind(record)
        for key in [k for k in self.filters if k[0] == agent_id]:
            del self.filters[key]

    def framework_gone(self, framework_id: str) -> None:
        """The framework's stream ended: its inverse offers go, as its offers do."""
        for record in [r for r in self.inverse.values() if r.framework_id == framework_id]:
            del self.inverse[record.offer_id]

    def _rescind(self, record: InverseOfferRecord) -> None:
        del self.inverse[record.offer_id]
        fw = self.master.frameworks.get(record.framework_id)
        if fw is not None:
            fw.send(
                {
                    "type": "RESCIND_INVERSE_OFFER",
                    "rescind_inverse_offer": {"inverse_offer_id": {"value": record.offer_id}},
                }
            )

    # ------------------------------------------------------------------ draining

    def drain(self, body: dict) -> None:
        """``DRAIN_AGENT``'s ``drain_agent``; ``MaintenanceError`` when refused."""
        agent_id = id_value(body.get("agent_id") or body.get("slave_id")) or ""
        agent = self._agent(agent_id)
        machine = self.machine_of(agent)
        if machine in self.windows:
            raise MaintenanceError(
                400,
                f"Agent {agent_id} is part of a maintenance schedule under Machine"
                f" {agent.hostname} ({agent.ip})",
            )
        config: dict = {"mark_gone": bool(body.get("mark_gone", False))}
        if "max_grace_period" in body:
            config["max_grace_period"] = body["max_grace_period"]
        agent.drain = {"state": "DRAINING", "config": config}
        self.deactivate(agent)
        max_grace = (
            _nanos(body.get("max_grace_period")) / 1e9 if "max_grace_period" in body else None
        )
        for (fid, tid), task in list(agent.tasks.items()):
            fw = self.master.frameworks.get(fid)
            if fw is None or is_terminal(task.state):
                continue
            policy = (task.info.get("kill_policy") or {}).get("grace_period")
            grace = _nanos(policy) / 1e9 if policy else 3.0
            if max_grace is not None:
                grace = min(grace, max_grace)
            self.master.kill(
                fw,
                {
                    "task_id": {"value": tid},
                    "kill_policy": {"grace_period": {"nanoseconds": int(grace * 1e9)}},
                },
            )
        self.check_drained(agent)

    def deactivate(self, agent: Agent) -> None:
        agent.deactivated = True
        self.master.allocator.remove_agent_offers(agent.id)

    def reactivate(self, body: dict) -> None:
        agent = self._agent(id_value(body.get("agent_id") or body.get("slave_id")) or "")
        if not agent.deactivated:
            raise MaintenanceError(400, "Agent is not deactivated")
        if agent.drain is not None and agent.drain["state"] == "DRAINING":
            raise MaintenanceError(400, "Agent is still in the DRAINING state")
        agent.deactivated = False
        agent.drain = None
        self.master.allocator.schedule()

    def check_drained(self, agent: Agent | None) -> None:
        """A draining agent without tasks left is DRAINED."""
        if agent is not None and agent.drain is not None and not agent.tasks:
            agent.drain["state"] = "DRAINED"

    def draining_update(
        self, agent: Agent, fw: Framework, status: dict, latest: str | None
    ) -> tuple[dict, str | None]:
        """A task update from a draining agent, as the agent rewrites it: KILLING and KILLED
        say REASON_AGENT_DRAINING (and become GONE_BY_OPERATOR with ``mark_gone``)."""
        if agent.drain is None or status.get("state") not in ("TASK_KILLING", "TASK_KILLED"):
            return status, latest
        status = {**status, "reason": "REASON_AGENT_DRAINING"}
        if agent.drain["config"].get("mark_gone") and fw.partition_aware:
            status["state"] = "TASK_GONE_BY_OPERATOR"
            if latest in ("TASK_KILLING", "TASK_KILLED"):
                latest = "TASK_GONE_BY_OPERATOR"
        return status, latest

    def _agent(self, agent_id: str) -> Agent:
        agent = self.master.agents.get(agent_id)
        if agent is None:
            raise MaintenanceError(400, "Unknown agent")
        return agent
