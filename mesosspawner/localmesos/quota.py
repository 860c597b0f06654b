"""Quota, as Mesos 1.11's master and allocator keep it (``UPDATE_QUOTA``/``GET_QUOTA`` on the
operator API, ``GET /quota``, ``GET /roles``; ``src/master/quota_handler.cpp``,
``src/master/quota.cpp``, ``src/master/allocator/mesos/hierarchical.cpp``).

A role's quota has guarantees and limits, each a map of scalar names to amounts. Only the
limits change what is offered: the allocator offers a role's reservations and non-scalar
resources whatever its limits, and its unreserved scalars only up to ``limit - consumed``,
where a role consumes its reservations (all of them, allocated or not) plus the unreserved
resources allocated to it (its tasks' and its outstanding offers'). Guarantees are checked and
shown but reserve nothing here (Mesos holds back headroom for them; localmesos does not).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from mesosspawner.mesos.resources import UNRESERVED, Resource

if TYPE_CHECKING:
    from .master import Master
    from .model import Agent, Framework

# Larger amounts overflow Mesos's fixed-point scalars; the master refuses them.
EXABYTE_MB = 1024**4
OTHER_MAX = 1000**4


class QuotaError(Exception):
    """A refused quota update: the HTTP status and Mesos's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def role_error(role: object) -> str | None:
    """Mesos's ``roles::validate``: the error text, or None for a valid role."""
    if not isinstance(role, str):
        return f"Role {role!r} must be a string"
    if role == "*":
        return None
    if role.startswith("/"):
        return f"Role '{role}' cannot start with a slash"
    if role.endswith("/"):
        return f"Role '{role}' cannot end with a slash"
    if "//" in role:
        return f"Role '{role}' cannot contain two adjacent slashes"
    if not role:
        return "Role names cannot be the empty string"
    for part in role.split("/"):
        if part in (".", "..", "*"):
            return f"Role '{role}' cannot include '{part}' as a component"
        if part.startswith("-"):
            return f"Role component '{part}' is invalid because it starts with a dash"
        if any(c.isspace() or c == "\b" for c in part):
            return f"Role component '{part}' is invalid because it contains backspace or whitespace"
    return None


def _amounts(config: dict, key: str, what: str) -> dict[str, float]:
    raw = config.get(key) or {}
    if not isinstance(raw, dict):
        raise QuotaError(400, f"Invalid QuotaConfig: '{key}' must be a map of name to scalar")
    out = {}
    for name, value in raw.items():
        try:
            amount = float(value["value"])
        except (KeyError, TypeError, ValueError):
            raise QuotaError(
                400, f"Invalid QuotaConfig: {key}[{name!r}] must be {{'value': number}}"
            ) from None
        biggest = EXABYTE_MB if name in ("mem", "disk") else OTHER_MAX
        if amount > biggest:
            raise QuotaError(
                400,
                f"Invalid QuotaConfig: Invalid 'QuotaConfig.{key}': {{'{name}': {value['value']}}}"
                f" is invalid: values greater than {biggest} are not supported",
            )
        if amount < 0:
            raise QuotaError(
                400,
                f"Invalid QuotaConfig: Invalid {what} configuration {{'{name}': {number(amount)}}}:"
                " Negative values not supported",
            )
        out[str(name)] = amount
    return out


def number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _fields(amounts: dict[str, float]) -> str:
    return ", ".join(f"{k}: {number(v)}" for k, v in sorted(amounts.items()))


def _quantities(amounts: dict[str, float]) -> str:
    return "; ".join(f"{k}:{number(v)}" for k, v in sorted(amounts.items())) or "{}"


class Quotas:
    """Every role's quota (roles updated once stay listed, as on Mesos, even when reset)."""

    def __init__(self) -> None:
        self.configs: dict[str, tuple[dict[str, float], dict[str, float]]] = {}

    # ------------------------------------------------------------------ the operator

    def update(self, master: Master, body: dict) -> None:
        """``UPDATE_QUOTA``'s ``update_quota``; ``QuotaError`` when refused (nothing changes)."""
        configs = body.get("quota_configs") or []
        if not isinstance(configs, list):
            raise QuotaError(400, "Invalid QuotaConfig: 'quota_configs' must be a list")
        force = bool(body.get("force"))
        parsed: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
        for config in configs:
            if not isinstance(config, dict) or "role" not in config:
                raise QuotaError(400, "Invalid QuotaConfig: 'QuotaConfig.role' must be set")
            role = config["role"]
            if isinstance(role, str) and "/" in role and not role_error(role):
                raise QuotaError(
                    400, f"Updating quota on nested role '{role}' is not supported yet"
                )
            error = role_error(role)
            if error:
                raise QuotaError(400, f"Invalid QuotaConfig: Invalid 'QuotaConfig.role': {error}")
            guarantees = _amounts(config, "guarantees", "guarantee")
            limits = _amounts(config, "limits", "limit")
            over = {k: v for k, v in guarantees.items() if k in limits and v > limits[k]}
            if over:
                raise QuotaError(
                    400,
                    "Invalid QuotaConfig: 'QuotaConfig.guarantees'"
                    f" {{ {_fields(guarantees)} }} is not contained within the"
                    f" 'QuotaConfig.limits' {{ {_fields(limits)} }}",
                )
            parsed[role] = (guarantees, limits)
        for role, (_, limits) in parsed.items():
            consumed = self.consumed(master.frameworks, master.agents, role, offered=False)
            beyond = any(consumed.get(k, 0.0) > v for k, v in limits.items())
            if beyond and not force:
                raise QuotaError(
                    400,
                    f"Invalid QuotaConfig: Role '{role}' is already consuming"
                    f" '{_quantities(consumed)}'; this is more than the requested limits"
                    f" '{_quantities(limits)}' (use 'force' flag to bypass this check)",
                )
        merged = {**self.configs, **parsed}
        guaranteed: dict[str, float] = {}
        for guarantees, _ in merged.values():
            for k, v in guarantees.items():
                guaranteed[k] = guaranteed.get(k, 0.0) + v
        capacity: dict[str, float] = {}
        for agent in master.agents.values():
            for r in agent.total:
                if r.scalar is not None:
                    capacity[r.name] = capacity.get(r.name, 0.0) + r.scalar
        if any(v > capacity.get(k, 0.0) for k, v in guaranteed.items()) and not force:
            raise QuotaError(
                400,
                f"Invalid QuotaConfig: total quota guarantees '{_quantities(guaranteed)}' exceed"
                f" cluster capacity '{_quantities(capacity)}' (use 'force' flag to bypass this"
                " check)",
            )
        self.configs = merged
        master.allocator.schedule()

    def status_json(self) -> dict:
        """``GET /quota`` and ``GET_QUOTA``'s ``status`` (a ``QuotaStatus``)."""
        configs = []
        for role, (guarantees, limits) in sorted(self.configs.items()):
            config: dict = {"role": role}
            if guarantees:
                config["guarantees"] = {k: {"value": v} for k, v in guarantees.items()}
            if limits:
                config["limits"] = {k: {"value": v} for k, v in limits.items()}
            configs.append(config)
        infos = [{"role": c["role"]} for c in configs]
        return {"infos": infos, "configs": configs} if configs else {}

    # ------------------------------------------------------------------ the allocator

    def limits(self, role: str) -> dict[str, float]:
        return self.configs.get(role, ({}, {}))[1]

    def consumed(
        self,
        frameworks: Mapping[str, Framework],
        agents: Mapping[str, Agent],
        role: str,
        *,
        offered: bool = True,
    ) -> dict[str, float]:
        """What ``role`` consumes of its quota: its reservations everywhere plus the unreserved
        scalars its tasks hold (and, as the allocator counts, those offered to it; the master's
        ``/roles`` and its update check leave offers out)."""
        out: dict[str, float] = {}
        for agent in agents.values():
            if role != UNRESERVED:
                _add(out, (r for r in agent.total if r.role == role))
        for fw in frameworks.values():
            for task in fw.tasks.values():
                if task.role == role and not task.resources_released:
                    _add(out, (r for r in task.resources if r.role == UNRESERVED))
            if offered:
                for offer in fw.offers.values():
                    if offer.role == role:
                        _add(out, (r for r in offer.resources if r.role == UNRESERVED))
        return out

    def room_by_role(
        self, frameworks: Mapping[str, Framework], agents: Mapping[str, Agent]
    ) -> dict[str, dict[str, float]]:
        """role -> what its limits leave it now (roles with limits only): one allocation pass
        offers a role no more, and ``charge`` what it offers."""
        out = {}
        for role, (_, limits) in self.configs.items():
            if limits:
                used = self.consumed(frameworks, agents, role)
                out[role] = {k: max(0.0, round(v - used.get(k, 0.0), 3)) for k, v in limits.items()}
        return out

    @staticmethod
    def shrink(res: list[Resource], room: Mapping[str, float]) -> list[Resource]:
        """``res`` with its unreserved scalars cut down to ``room`` (by name; a name without
        room left is dropped, a name the limits do not name is kept whole): Mesos's
        ``shrinkResources`` on what a limited role is offered."""
        left = dict(room)
        out = []
        for r in res:
            if r.role != UNRESERVED or r.scalar is None or r.name not in left:
                out.append(r)
                continue
            keep = round(min(r.scalar, left[r.name]), 3)
            if keep > 0:
                out.append(replace(r, scalar=keep))
                left[r.name] = round(left[r.name] - keep, 3)
        return out

    @staticmethod
    def charge(room: dict[str, float], offered: Iterable[Resource]) -> None:
        """Take what was offered to a limited role out of its ``room``."""
        for r in offered:
            if r.role == UNRESERVED and r.scalar is not None and r.name in room:
                room[r.name] = max(0.0, round(room[r.name] - r.scalar, 3))


def roles_json(master: Master) -> dict:
    """``GET /roles``: every known role (of a framework, a reservation or a quota) with its
    weight, quota (guarantee, limit, consumed) and what it was allocated, offered, reserved."""
    quotas = master.allocator.quotas
    names: set[str] = set(quotas.configs)
    for fw in master.frameworks.values():
        names.update(fw.roles)
    for agent in master.agents.values():
        names.update(r.role for r in agent.total if r.role != UNRESERVED)
    out = []
    for name in sorted(names):
        allocated: dict[str, float] = {}
        offered: dict[str, float] = {}
        for fw in master.frameworks.values():
            for task in fw.tasks.values():
                if task.role == name and not task.resources_released:
                    _add(allocated, task.resources)
            for offer in fw.offers.values():
                if offer.role == name:
                    _add(offered, offer.resources)
        reserved: dict[str, float] = {}
        for agent in master.agents.values():
            _add(reserved, (r for r in agent.total if r.role == name and name != UNRESERVED))
        guarantees, limits = quotas.configs.get(name, ({}, {}))
        out.append(
            {
                "name": name,
                "weight": 1.0,
                "quota": {
                    "role": name,
                    "guarantee": guarantees,
                    "limit": limits,
                    "consumed": quotas.consumed(
                        master.frameworks, master.agents, name, offered=False
                    ),
                },
                "resources": _sum(allocated, offered),
                "allocated": allocated,
                "offered": offered,
                "reserved": reserved,
                "frameworks": sorted(f.id for f in master.frameworks.values() if name in f.roles),
            }
        )
    return {"roles": out}


def _add(into: dict[str, float], resources: Iterable[Resource]) -> None:
    for r in resources:
        if r.scalar is not None:
            into[r.name] = round(into.get(r.name, 0.0) + r.scalar, 3)


def _sum(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: round(a.get(k, 0.0) + b.get(k, 0.0), 3) for k in {*a, *b}}
