"""The master's operator API (``POST /api/v1``, ``mesos::master::Call`` in JSON), the part of it
localmesos has: maintenance, draining, quota, teardown, marking an agent gone, health and
version. Transport-free:
``call(master, body)`` answers (status, JSON or text); ``handlers.py`` speaks HTTP.

As Mesos 1.11 answers (``src/master/http.cpp``): 200 with a JSON ``Response`` for GET_* calls,
200 with no body for the others, 400 with Mesos's message for a malformed or refused call.
A call real Mesos has and localmesos does not is answered 501, naming it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .gone import GoneError, mark_agent_gone
from .maintenance import MaintenanceError
from .model import VERSION
from .quota import QuotaError
from .validation import id_value

if TYPE_CHECKING:
    from .master import Master

# Every ``mesos.v1.master.Call.Type`` of Mesos 1.11.
KNOWN_CALLS = frozenset(
    """GET_HEALTH GET_FLAGS GET_VERSION GET_METRICS GET_LOGGING_LEVEL SET_LOGGING_LEVEL
    LIST_FILES READ_FILE GET_STATE GET_AGENTS GET_FRAMEWORKS GET_EXECUTORS GET_OPERATIONS
    GET_TASKS GET_ROLES GET_WEIGHTS UPDATE_WEIGHTS GET_MASTER SUBSCRIBE RESERVE_RESOURCES
    UNRESERVE_RESOURCES CREATE_VOLUMES DESTROY_VOLUMES GROW_VOLUME SHRINK_VOLUME
    GET_MAINTENANCE_STATUS GET_MAINTENANCE_SCHEDULE UPDATE_MAINTENANCE_SCHEDULE
    START_MAINTENANCE STOP_MAINTENANCE DRAIN_AGENT DEACTIVATE_AGENT REACTIVATE_AGENT GET_QUOTA
    UPDATE_QUOTA SET_QUOTA REMOVE_QUOTA TEARDOWN MARK_AGENT_GONE""".split()
)

Answer = tuple[int, "dict | str | None"]


def call(master: Master, body: object) -> Answer:
    """One operator call (the decoded JSON body) -> (HTTP status, answer)."""
    kind = body.get("type") if isinstance(body, dict) else None
    if kind not in KNOWN_CALLS:
        return 400, "Failed to validate master::Call: Expecting 'type' to be present"
    assert isinstance(body, dict)
    handler = _HANDLERS.get(kind)
    if handler is None:
        return 501, (
            f"localmesos does not implement the operator call {kind}"
            " (docs/localmesos-vs-mesos.md lists what it has)"
        )
    key = kind.lower()
    if kind not in _NO_BODY and not isinstance(body.get(key), dict):
        return 400, f"Failed to validate master::Call: Expecting '{key}' to be present"
    try:
        return handler(master, body.get(key) or {})
    except (MaintenanceError, QuotaError, GoneError) as e:
        return e.status, e.message


def _get(kind: str, field: str, value: object) -> Answer:
    return 200, {"type": kind, kind.lower(): {field: value}}


def _update_schedule(master: Master, body: dict) -> Answer:
    master.maintenance.update_schedule(body.get("schedule") or {})
    return 200, None


def _drain(master: Master, body: dict) -> Answer:
    master.maintenance.drain(body)
    return 200, None


def _deactivate(master: Master, body: dict) -> Answer:
    agent = master.agents.get(id_value(body.get("agent_id")) or "")
    if agent is None:
        return 400, "Unknown agent"
    master.maintenance.deactivate(agent)
    return 200, None


def _reactivate(master: Master, body: dict) -> Answer:
    master.maintenance.reactivate(body)
    return 200, None


def _update_quota(master: Master, body: dict) -> Answer:
    master.allocator.quotas.update(master, body)
    return 200, None


def _mark_gone(master: Master, body: dict) -> Answer:
    mark_agent_gone(master, body)
    return 200, None


def _teardown(master: Master, body: dict) -> Answer:
    fw = master.frameworks.get(id_value(body.get("framework_id")) or "")
    if fw is None:
        return 400, "No framework found with specified ID"
    master.remove_framework(fw)
    return 200, None


_NO_BODY = frozenset(
    {"GET_HEALTH", "GET_VERSION", "GET_MAINTENANCE_STATUS", "GET_MAINTENANCE_SCHEDULE", "GET_QUOTA"}
)
_HANDLERS = {
    "GET_HEALTH": lambda m, b: _get("GET_HEALTH", "healthy", True),
    "GET_VERSION": lambda m, b: _get(
        "GET_VERSION", "version_info", {"version": VERSION, "git_sha": "localmesos"}
    ),
    "GET_MAINTENANCE_SCHEDULE": lambda m, b: _get(
        "GET_MAINTENANCE_SCHEDULE", "schedule", m.maintenance.schedule
    ),
    "GET_MAINTENANCE_STATUS": lambda m, b: _get(
        "GET_MAINTENANCE_STATUS", "status", m.maintenance.status_json()
    ),
    "UPDATE_MAINTENANCE_SCHEDULE": _update_schedule,
    "DRAIN_AGENT": _drain,
    "DEACTIVATE_AGENT": _deactivate,
    "REACTIVATE_AGENT": _reactivate,
    "GET_QUOTA": lambda m, b: _get("GET_QUOTA", "status", m.allocator.quotas.status_json()),
    "UPDATE_QUOTA": _update_quota,
    "TEARDOWN": _teardown,
    "MARK_AGENT_GONE": _mark_gone,
}
