"""``GET /master/state`` and ``GET /master/slaves``: the master's records in real Mesos's
state.json shape (``frameworks[].tasks[]``, ``slaves[]`` with used and offered resources)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mesosspawner.mesos.resources import (
    UNRESERVED,
    Resource,
    attributes_state_json,
    resource_to_json,
    resources_state_json,
)

from .model import VERSION, Agent, Framework, Task

if TYPE_CHECKING:
    from .master import Master

_STATUS_KEYS = ("state", "timestamp", "container_status", "healthy")


def master_state(
    master: Master, *, leader_info: dict | None = None, flags: dict | None = None
) -> dict:
    """``GET /master/state``: Mesos's state.json of this master."""
    info = leader_info or master.master_info()
    return {
        "version": VERSION,
        "git_sha": "localmesos",
        "git_tag": VERSION,
        "build_date": "",
        "build_time": master.start_time,
        "build_user": "localmesos",
        "start_time": master.start_time,
        "elected_time": master.elected_time,
        "id": master.id,
        "pid": f"master@{master.ip}:{master.port}",
        "hostname": master.hostname,
        "activated_slaves": sum(1 for a in master.agents.values() if a.connected),
        "deactivated_slaves": sum(1 for a in master.agents.values() if not a.connected),
        "unreachable_slaves": len(master.unreachable_agents),
        "leader": info["pid"],
        "leader_info": info,
        "log_dir": "",
        "flags": flags or {},
        "slaves": [agent_state(a) for a in master.agents.values()],
        "frameworks": [framework_state(f) for f in master.frameworks.values()],
        "completed_frameworks": [framework_state(f) for f in master.completed_frameworks],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    }


def agent_state(a: Agent) -> dict:
    """One entry of ``slaves[]``; the fields that never change are computed once."""
    if a.static_state is None:
        reserved: dict[str, list[Resource]] = {}
        for r in a.total:
            if r.role != UNRESERVED:
                reserved.setdefault(r.role, []).append(r)
        a.static_state = {
            "id": a.id,
            "pid": f"slave(1)@{a.ip}:{a.port}",
            "hostname": a.hostname,
            "port": a.port,
            "registered_time": a.registered_time,
            "resources": _state_sum(a.total),
            "reserved_resources": {k: _state_sum(v) for k, v in reserved.items()},
            "unreserved_resources": _state_sum([r for r in a.total if r.role == UNRESERVED]),
            "reserved_resources_full": {
                k: [resource_to_json(r, endpoint=True) for r in v] for k, v in reserved.items()
            },
            "attributes": attributes_state_json(a.attributes),
            "version": VERSION,
            "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
        }
    out = dict(a.static_state)
    out["used_resources"] = _state_sum(a.used)
    out["offered_resources"] = _state_sum(a.offered)
    out["active"] = a.connected and not a.deactivated
    out["deactivated"] = a.deactivated
    if a.drain is not None:
        out["drain_info"] = a.drain
    return out


def framework_state(fw: Framework) -> dict:
    used = [r for t in fw.tasks.values() if not t.resources_released for r in t.resources]
    offered = [r for o in fw.offers.values() for r in o.resources]
    info = fw.info
    out = {
        "id": fw.id,
        "name": info.get("name", ""),
        "pid": "",
        "user": info.get("user", ""),
        "hostname": info.get("hostname", ""),
        "webui_url": info.get("webui_url", ""),
        "principal": info.get("principal", ""),
        "roles": fw.roles,
        "active": fw.connected,
        "connected": fw.connected,
        "recovered": fw.recovered,
        "checkpoint": bool(info.get("checkpoint", False)),
        "failover_timeout": fw.failover_timeout,
        "capabilities": sorted(c for c in fw.capabilities if c),
        "registered_time": fw.registered_time,
        "unregistered_time": fw.unregistered_time,
        "resources": _state_sum(used + offered),
        "used_resources": _state_sum(used),
        "offered_resources": _state_sum(offered),
        "tasks": [task_state(t) for t in fw.tasks.values()],
        "unreachable_tasks": [task_state(t) for t in fw.unreachable_tasks.values()],
        "completed_tasks": [task_state(t) for t in fw.completed_tasks],
        "offers": [
            {
                "id": o.offer_id,
                "framework_id": fw.id,
                "slave_id": o.agent_id,
                "resources": resources_state_json(o.resources),
                "allocation_info": {"role": o.role},
            }
            for o in fw.offers.values()
        ],
        "executors": [],
    }
    if "MULTI_ROLE" not in fw.capabilities:
        out["role"] = fw.roles[0]
    if fw.reregistered_time:
        out["reregistered_time"] = fw.reregistered_time
    return out


def slaves_state(master: Master) -> dict:
    """``GET /master/slaves``."""
    return {"slaves": [agent_state(a) for a in master.agents.values()], "recovered_slaves": []}


def task_state(task: Task) -> dict:
    """One entry of ``tasks[]``, cached on the task until its state or statuses change."""
    if task.static_json is None:
        info = task.info
        static = {
            "id": task.task_id,
            "name": task.name,
            "framework_id": task.framework_id,
            "executor_id": "",
            "slave_id": task.agent_id,
            "agent_id": task.agent_id,
            "role": task.role,
            "resources": resources_state_json(task.resources),
        }
        if "labels" in info:
            static["labels"] = (info.get("labels") or {}).get("labels", [])
        if "container" in info:
            static["container"] = info["container"]
        if "discovery" in info:
            static["discovery"] = info["discovery"]
        task.static_json = static
    key = (task.state, len(task.statuses), id(task.statuses[-1]) if task.statuses else 0)
    if task.cached_json_key != key or task.cached_json is None:
        out = dict(task.static_json)
        out["state"] = task.state
        out["statuses"] = [{k: v for k, v in s.items() if k in _STATUS_KEYS} for s in task.statuses]
        task.cached_json, task.cached_json_key = out, key
    return task.cached_json


def _state_sum(resources: Iterable[Resource]) -> dict:
    """``resources_state_json`` for long lists (every task of a framework), in one pass."""
    totals: dict[str, int] = {"cpus": 0, "mem": 0, "disk": 0, "gpus": 0}
    others: list[Resource] = []
    for r in resources:
        if r.scalar is not None:
            totals[r.name] = totals.get(r.name, 0) + round(r.scalar * 1000)
        else:
            others.append(r)
    out: dict = {k: v / 1000 for k, v in totals.items()}
    if others:
        out.update({k: v for k, v in resources_state_json(others).items() if k not in totals})
    return out
