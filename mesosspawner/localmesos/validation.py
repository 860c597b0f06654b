"""Mesos's validation of scheduler calls, FrameworkInfo and TaskInfo (pure).

Plain JSON in, the error text Mesos 1.11 answers with out (``src/master/validation.cpp`` and the
proto's required fields); no master state, no clock.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Container, Iterable

from mesosspawner.mesos.resources import (
    UNRESERVED,
    Resource,
    ResourceError,
    contains,
    format_resources,
    merge,
    resource_from_json,
)


class InvalidTask(ValueError):
    """A TaskInfo Mesos refuses (TASK_ERROR, REASON_TASK_INVALID); the message says why."""


def id_value(obj: object) -> str | None:
    """``{"value": "x"}`` → ``"x"``; anything else → None.

    Stricter than ``mesos.wire.value_of`` on purpose: the master refuses a bare string or a
    non-string value where Mesos's proto parsing does.
    """
    if isinstance(obj, dict) and isinstance(obj.get("value"), str):
        return obj["value"]
    return None


_CALL_BODIES = {
    "ACCEPT": "accept",
    "DECLINE": "decline",
    "ACCEPT_INVERSE_OFFERS": "accept_inverse_offers",
    "DECLINE_INVERSE_OFFERS": "decline_inverse_offers",
    "KILL": "kill",
    "SHUTDOWN": "shutdown",
    "ACKNOWLEDGE": "acknowledge",
    "ACKNOWLEDGE_OPERATION_STATUS": "acknowledge_operation_status",
    "RECONCILE": "reconcile",
    "RECONCILE_OPERATIONS": "reconcile_operations",
    "MESSAGE": "message",
    "REQUEST": "request",
    "UPDATE_FRAMEWORK": "update_framework",
}
_CALL_TYPES = {"SUBSCRIBE", "TEARDOWN", "REVIVE", "SUPPRESS", "UNKNOWN", *_CALL_BODIES}


def validate_call(call: dict) -> str | None:
    """Mesos's ``validation::scheduler::call::validate`` (+ required proto fields); the 400 text."""
    prefix = "Failed to validate scheduler::Call: "
    kind = call.get("type")
    if kind is None:
        return prefix + "Expecting 'type' to be present"
    if kind not in _CALL_TYPES:
        return f"Failed to convert JSON into Call protobuf: unknown call type {kind!r}"
    if kind == "SUBSCRIBE":
        sub = call.get("subscribe")
        if not isinstance(sub, dict) or not isinstance(sub.get("framework_info"), dict):
            return prefix + "Expecting 'subscribe' to be present"
        info = sub["framework_info"]
        missing = [k for k in ("user", "name") if not isinstance(info.get(k), str)]
        if missing:
            return "Failed to convert JSON into Call protobuf: Missing required fields: " + (
                ", ".join(f"subscribe.framework_info.{k}" for k in missing)
            )
        if id_value(info.get("id")) != id_value(call.get("framework_id")):
            return prefix + "'framework_id' differs from 'subscribe.framework_info.id'"
        return None
    if not id_value(call.get("framework_id")):
        return prefix + "Expecting 'framework_id' to be present"
    body_key = _CALL_BODIES.get(kind)
    if body_key is not None and not isinstance(call.get(body_key), dict):
        return prefix + f"Expecting '{body_key}' to be present"
    if kind == "KILL" and not id_value(call["kill"].get("task_id")):
        return "Failed to convert JSON into Call protobuf: Missing required fields: kill.task_id"
    if kind == "ACKNOWLEDGE":
        ack = call["acknowledge"]
        missing = [k for k in ("agent_id", "task_id") if not id_value(ack.get(k))]
        if "uuid" not in ack:
            missing.append("uuid")
        if missing:
            return "Failed to convert JSON into Call protobuf: Missing required fields: " + (
                ", ".join(f"acknowledge.{k}" for k in missing)
            )
        try:
            raw = base64.b64decode(ack["uuid"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            return (
                f"Failed to convert JSON into Call protobuf: 'uuid' {ack['uuid']!r} is not base64"
            )
        if len(raw) != 16:
            return prefix + f"Invalid UUID: {len(raw)} bytes instead of 16"
    missing = _missing_required(kind, call)
    if missing:
        return "Failed to convert JSON into Call protobuf: Missing required fields: " + ", ".join(
            missing
        )
    if kind == "UPDATE_FRAMEWORK":
        info = call["update_framework"].get("framework_info") or {}
        if id_value(info.get("id")) != id_value(call.get("framework_id")):
            return prefix + "'framework_id' differs from 'update_framework.framework_info.id'"
    return None


def validate_acknowledge(body: dict) -> str | None:
    """The master's own check of an ACKNOWLEDGE body; None when the update can be matched."""
    raw = body.get("uuid")
    if not id_value(body.get("task_id")) or not id_value(body.get("agent_id")):
        return "ACKNOWLEDGE needs 'task_id', 'agent_id' and 'uuid'"
    if not isinstance(raw, str):
        return "ACKNOWLEDGE needs 'task_id', 'agent_id' and 'uuid'"
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return f"'uuid' {raw!r} is not base64"
    if len(decoded) != 16:
        return f"'uuid' {raw!r} is not a 16-byte UUID"
    return None


def _missing_required(kind: str, call: dict) -> list[str]:
    """Proto ``required`` fields the JSON lacks (Mesos rejects the whole call with 400)."""
    missing: list[str] = []
    if kind == "ACCEPT":
        body = call["accept"]
        for i, oid in enumerate(body.get("offer_ids") or []):
            if not id_value(oid):
                missing.append(f"accept.offer_ids[{i}].value")
        for i, op in enumerate(body.get("operations") or []):
            if not isinstance(op, dict):
                missing.append(f"accept.operations[{i}]")
                continue
            tasks = (op.get("launch") or {}).get("task_infos") or []
            for j, t in enumerate(tasks if isinstance(tasks, list) else []):
                where = f"accept.operations[{i}].launch.task_infos[{j}]"
                if not isinstance(t, dict):
                    missing.append(where)
                    continue
                if not isinstance(t.get("name"), str):
                    missing.append(f"{where}.name")
                for key in ("task_id", "agent_id"):
                    if not id_value(t.get(key)):
                        missing.append(f"{where}.{key}")
                for k, r in enumerate(t.get("resources") or []):
                    if not isinstance(r, dict) or "name" not in r or "type" not in r:
                        missing.append(f"{where}.resources[{k}].name/type")
    elif kind == "DECLINE":
        for i, oid in enumerate(call["decline"].get("offer_ids") or []):
            if not id_value(oid):
                missing.append(f"decline.offer_ids[{i}].value")
    elif kind == "RECONCILE":
        for i, t in enumerate(call["reconcile"].get("tasks") or []):
            if not isinstance(t, dict) or not id_value(t.get("task_id")):
                missing.append(f"reconcile.tasks[{i}].task_id")
    return missing


def validate_framework_info(info: dict) -> str | None:
    """The FrameworkInfo rules of Mesos's master validation; None when valid."""
    if not isinstance(info, dict):
        return "'framework_info' must be an object"
    caps = {c.get("type") for c in info.get("capabilities") or [] if isinstance(c, dict)}
    if "MULTI_ROLE" in caps:
        if "role" in info:
            return "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable"
        roles = info.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            return "'FrameworkInfo.roles' must be a list of strings"
        if len(set(roles)) != len(roles):
            return f"'FrameworkInfo.roles' contains duplicate entries: {roles}"
        for role in roles:
            err = _role_error(role)
            if err:
                return err
    else:
        if info.get("roles"):
            return (
                "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
            )
        role = info.get("role")
        if role is not None:
            err = _role_error(role)
            if err:
                return err
    return None


def framework_update(old: dict, new: dict) -> tuple[dict, str | None]:
    """A re-subscription's FrameworkInfo as Mesos takes it (``validateUpdate`` after
    ``preserveImmutableFields``): ``user`` and ``checkpoint`` silently keep their first value;
    another principal is refused."""
    if old.get("principal") != new.get("principal"):
        return new, "Changing framework's principal is not allowed."
    kept = dict(new, user=old.get("user"))
    kept.pop("checkpoint", None)
    if "checkpoint" in old:
        kept["checkpoint"] = old["checkpoint"]
    return kept, None


def _role_error(role: object) -> str | None:
    if not isinstance(role, str) or not role:
        return f"Role {role!r} must be a non-empty string"
    if role in (".", "..") or role.startswith("-") or any(c.isspace() for c in role):
        return (
            f"Role '{role}' is invalid: it must not be '.', '..', start with '-' or contain spaces"
        )
    return None


NAME_MAX = 255


def validate_id(value: object) -> str | None:
    """Mesos's ``common::validation::validateID`` for task ids; the error text or None.

    Whitespace is allowed; control characters and both path separators are not.
    """
    if not isinstance(value, str) or not value:
        return "ID must not be empty"
    if len(value) > NAME_MAX:
        return f"ID must not be greater than {NAME_MAX} characters"
    if value in (".", ".."):
        return f"'{value}' is disallowed"
    if any(c in "/\\" or ord(c) < 32 or ord(c) == 127 for c in value):
        return f"'{value}' contains invalid characters"
    return None


def validate_task(
    t: object,
    agent_id: str,
    role: str,
    pool: list[Resource],
    taken_ids: Iterable[Container[str]],
) -> list[Resource]:
    """Mesos's task validation (subset) of a TaskInfo launched on ``agent_id`` for ``role``
    from the offered ``pool``; ``taken_ids`` hold the framework's task ids. Returns the task's
    resources or raises InvalidTask."""
    if not isinstance(t, dict):
        raise InvalidTask("TaskInfo must be an object")
    tid = id_value(t.get("task_id"))
    error = validate_id(tid)
    if error:
        raise InvalidTask(error)
    if any(tid in ids for ids in taken_ids):
        raise InvalidTask(f"Task has duplicate ID: {tid}")
    aid = id_value(t.get("agent_id"))
    if aid != agent_id:
        raise InvalidTask(f"Task uses invalid agent: {aid} (the offer is for agent {agent_id})")
    if "executor" in t:
        raise InvalidTask("localmesos runs command tasks only: custom executors are not supported")
    if not isinstance(t.get("command"), dict):
        raise InvalidTask(
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
        )
    if not t.get("name") and t.get("name") != "":
        raise InvalidTask("Task must have a name")
    raw = t.get("resources")
    if not raw:
        raise InvalidTask("Task uses no resources")
    try:
        res = merge(resource_from_json(r) for r in raw)
    except ResourceError as e:
        raise InvalidTask(f"Task uses invalid resources: {e}") from None
    for r in raw:
        # A missing allocation_info is filled in with the offer's role (master.cpp
        # injectAllocationInfo); a different one is an error.
        alloc = (r.get("allocation_info") or {}).get("role")
        if alloc is not None and alloc != role:
            raise InvalidTask(
                f"Task resource {r.get('name')} is allocated to role '{alloc}', not '{role}'"
            )
    for r in res:
        if r.role not in (UNRESERVED, role):
            raise InvalidTask(f"Task resource {r.name}({r.role}) is not reserved for role '{role}'")
        if r.name == "gpus" and not float(r.scalar or 0).is_integer():
            raise InvalidTask(f"The 'gpus' resource must be an unsigned integer, not {r.scalar}")
    if not contains(pool, res):
        raise InvalidTask(
            f"Task uses more resources {format_resources(res)} than available "
            f"{format_resources(pool)}",
        )
    return res
