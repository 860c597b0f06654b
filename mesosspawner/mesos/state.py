"""What the master's operator endpoints say about agents and tasks, as plain values.

Pure. ``GET /master/slaves`` (and ``/master/state``, same ``slaves`` shape) gives every agent's
total resources by role, which offers never show (they hold only what is free for us);
``/master/state`` lists a framework's tasks with their resources, which reconciliation never
answers with. Fetching them is ``SchedulerClient.get_json``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

from .resources import (
    UNRESERVED,
    Attribute,
    Resource,
    ResourceError,
    merge,
    parse_resources,
    resource_from_json,
)

__all__ = [
    "AgentSeen",
    "RoleQuota",
    "TaskSeen",
    "agents_from_master",
    "quota_consumed_from_roles",
    "quotas_from_master",
    "tasks_from_master",
]


@dataclass(frozen=True)
class AgentSeen:
    """One active agent as the master's state lists it: its total resources (other
    frameworks' use included) and attributes."""

    agent_id: str
    hostname: str
    total: tuple[Resource, ...]
    attributes: tuple[Attribute, ...] = ()


@dataclass(frozen=True)
class TaskSeen:
    """One task of a framework as the master's state lists it (what a restarted hub re-learns:
    reconciliation answers with states, never with resources)."""

    task_id: str
    agent_id: str
    state: str
    resources: tuple[Resource, ...]


@dataclass(frozen=True)
class RoleQuota:
    """A role's quota as the master enforces it (Mesos 1.9+, ``UPDATE_QUOTA``): the most of
    each scalar the role may hold (``limits``; a name absent has no limit), and what it holds
    now (``consumed``: its reservations plus what its tasks were allocated)."""

    role: str
    limits: tuple[tuple[str, float], ...]
    consumed: tuple[tuple[str, float], ...] = ()

    def limit(self, name: str) -> float | None:
        return next((v for n, v in self.limits if n == name), None)

    def used(self, name: str) -> float:
        return next((v for n, v in self.consumed if n == name), 0.0)


def quotas_from_master(data: dict) -> dict[str, RoleQuota]:
    """Roles with quota limits, from ``GET /master/quota`` (a ``QuotaStatus``: ``configs`` of
    ``{role, guarantees, limits: {name: {value}}}``). Guarantees do not cap what a role gets:
    only limits are read."""
    configs = data.get("configs") if isinstance(data, dict) else None
    if not isinstance(configs, list):
        raise ResourceError(f"quota status has no 'configs' list: {str(data)[:200]}")
    out = {}
    for config in configs:
        try:
            limits = tuple(
                sorted((str(k), float(v["value"])) for k, v in (config.get("limits") or {}).items())
            )
            role = str(config["role"])
        except (TypeError, ValueError, AttributeError, KeyError) as e:
            raise ResourceError(f"quota config {config!r:.200}: bad or missing {e}") from None
        if limits:
            out[role] = RoleQuota(role, limits)
    return out


def quota_consumed_from_roles(data: dict) -> dict[str, tuple[tuple[str, float], ...]]:
    """Each role's quota consumption (``quota.consumed``), from ``GET /master/roles``."""
    roles = data.get("roles") if isinstance(data, dict) else None
    if not isinstance(roles, list):
        raise ResourceError(f"roles answer has no 'roles' list: {str(data)[:200]}")
    out = {}
    for role in roles:
        try:
            consumed = (role.get("quota") or {}).get("consumed") or {}
            out[str(role["name"])] = tuple(sorted((str(k), float(v)) for k, v in consumed.items()))
        except (TypeError, ValueError, AttributeError, KeyError) as e:
            raise ResourceError(f"role {role!r:.200}: bad or missing {e}") from None
    return out


def agents_from_master(data: dict) -> list[AgentSeen]:
    """Active agents' total resources (by role) and attributes, from ``GET /master/slaves`` or
    ``/master/state`` (same ``slaves`` shape).

    Totals include what other frameworks hold, so they answer "could this ever fit".
    ``ResourceError`` names the agent whose entry cannot be read.
    """
    slaves = data.get("slaves") if isinstance(data, dict) else None
    if not isinstance(slaves, list):
        raise ResourceError(f"master state has no 'slaves' list: {str(data)[:200]}")
    out = []
    for s in slaves:
        if not isinstance(s, dict) or s.get("active") is False:
            continue
        agent_id = s.get("id")
        try:
            total = _agent_total(s)
            attributes = tuple(
                Attribute(str(k), v if isinstance(v, str) else float(v))
                for k, v in (s.get("attributes") or {}).items()
            )
        except (ResourceError, TypeError, ValueError, AttributeError, KeyError) as e:
            raise ResourceError(f"agent {agent_id!r} in the master's state: {e}") from None
        hostname = str(s.get("hostname") or agent_id)
        out.append(AgentSeen(str(agent_id), hostname, tuple(total), attributes))
    return out


def tasks_from_master(data: dict, framework_id: str) -> list[TaskSeen]:
    """The tasks of ``framework_id`` (running and unreachable) in a ``/master/state`` answer."""
    out = []
    for fw in (data.get("frameworks") or []) if isinstance(data, dict) else []:
        if not isinstance(fw, dict) or fw.get("id") != framework_id:
            continue
        for t in [*(fw.get("tasks") or []), *(fw.get("unreachable_tasks") or [])]:
            try:
                role = t.get("role") or UNRESERVED
                out.append(
                    TaskSeen(
                        str(t["id"]),
                        str(t.get("slave_id") or t.get("agent_id") or ""),
                        str(t.get("state") or "TASK_UNKNOWN"),
                        tuple(_state_map(t.get("resources") or {}, role)),
                    )
                )
            except (ResourceError, TypeError, ValueError, AttributeError, KeyError) as e:
                raise ResourceError(f"task {t!r:.200} in the master's state: {e}") from None
    return out


def _agent_total(s: dict) -> list[Resource]:
    reserved: list[Resource] = []
    full = s.get("reserved_resources_full")
    if isinstance(full, dict):
        reserved = [resource_from_json(r) for rs in full.values() for r in rs]
    else:
        for role, amounts in (s.get("reserved_resources") or {}).items():
            reserved += _state_map(amounts, role)
    if "unreserved_resources" in s:
        unreserved = _state_map(s["unreserved_resources"] or {}, UNRESERVED)
    elif reserved:
        raise ResourceError("reserved resources listed without unreserved_resources")
    else:
        unreserved = _state_map(s.get("resources") or {}, UNRESERVED)
    return merge([*reserved, *unreserved])


def _state_map(amounts: dict, role: str) -> list[Resource]:
    """state.json's ``{"cpus": 8.0, "ports": "[31000-31999]"}`` as resources of ``role``."""
    out: list[Resource] = []
    for name, value in amounts.items():
        if isinstance(value, bool):
            raise ResourceError(f"resource {name}: {value!r} is not an amount")
        if isinstance(value, int | float):
            if value > 0:
                out.append(Resource(str(name), role, scalar=float(value)))
        elif isinstance(value, str) and value.strip() not in ("", "[]", "{}"):
            out += parse_resources(f"{name}:{value}", role)
        elif not isinstance(value, str):
            raise ResourceError(f"resource {name}: {value!r} is not an amount")
    return merge(out)
