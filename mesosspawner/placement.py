"""Which offer each pending notebook launch should use, and why one cannot be placed.

Pure matching: typed offers (``mesos.events.Offer``, parsed once from the OFFERS event) and
agents' capacity in, placements and reasons out, deterministic. All resource arithmetic is done
by ``mesosspawner.mesos.resources`` so the spawner and localmesos agree on what fits; reading
the master's state is ``mesos.state``'s job.

Rules:

* roles: a request for role R takes cpus/mem/disk/gpus/ports from R's reservations first and
  then from unreserved ``*`` resources, and only from offers allocated to R (or offers without
  ``allocation_info``: a framework without MULTI_ROLE); among those, an agent holding R's
  reservations is preferred. A ``*`` request only takes unreserved resources, so a Spark
  reservation is never used for an ordinary notebook.
* GPU-agent avoidance: a request without GPUs never lands on an agent that has GPUs while an
  agent without GPUs fits, so GPU machines stay free for the people who need them.
* Marathon-style constraints: ``LIKE``/``UNLIKE`` (full-match regex), ``IS``, ``CLUSTER``,
  ``UNIQUE``, ``MAX_PER``, ``GROUP_BY`` on an agent attribute or ``hostname``.
* ports: the lowest free ports, the request's role first.
* maintenance: no notebook starts on a machine scheduled to go down within the ``horizon``
  (an offer's ``unavailability``), or whose maintenance has begun: a notebook cannot move.
* quota: a role never gets more than its quota limit (the master enforces it by offering
  less); a request beyond what the limit can ever leave it is "never", one beyond what the
  role's current use leaves it waits for the quota, and each says so.
* ordering: ``spread`` prefers the agent with the most free cpus/mem, then the fewest tasks;
  ``binpack`` the least free; ties by hostname, then offer id.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace

from .mesos.events import Offer, Unavailability
from .mesos.resources import (
    UNRESERVED,
    Attribute,
    Resource,
    first_values,
    merge,
    ranges_of,
    scalar,
    subtract,
    values_to_ranges,
)
from .mesos.state import RoleQuota
from .mesos.wire import number

SCALARS = ("cpus", "mem", "disk", "gpus")
STRATEGIES = ("spread", "binpack")
OPERATORS = ("LIKE", "UNLIKE", "IS", "CLUSTER", "UNIQUE", "MAX_PER", "GROUP_BY")
HOSTNAME_FIELDS = ("hostname", "@hostname")

Constraint = tuple[str, ...]


@dataclass(frozen=True)
class Request:
    """One pending notebook launch."""

    key: str
    cpus: float
    mem: float
    disk: float = 0.0
    gpus: int = 0
    ports: int = 1  # 1 for a notebook; Spark needs 4 more (driver, block manager, libprocess, UI)
    role: str = UNRESERVED
    constraints: tuple[Constraint, ...] = ()

    def __post_init__(self) -> None:
        for name in ("cpus", "mem", "disk"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"request {self.key}: {name} must be a number >= 0, not {value!r}")
        if isinstance(self.gpus, float) and self.gpus.is_integer():
            object.__setattr__(self, "gpus", int(self.gpus))
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 0:
            raise ValueError(
                f"request {self.key}: gpus must be a whole number >= 0, not {self.gpus!r}"
            )
        if isinstance(self.ports, bool) or not isinstance(self.ports, int) or self.ports < 0:
            raise ValueError(
                f"request {self.key}: ports must be a whole number >= 0, not {self.ports!r}"
            )
        if not isinstance(self.role, str) or not self.role:
            raise ValueError(
                f"request {self.key}: role must be a non-empty string, not {self.role!r}"
            )
        object.__setattr__(self, "constraints", validate_constraints(self.constraints))

    def amount(self, name: str) -> float:
        return float(getattr(self, name))


@dataclass(frozen=True)
class Placed:
    """Where a task of this framework already runs (for UNIQUE/MAX_PER/GROUP_BY/CLUSTER)."""

    agent_id: str
    hostname: str
    attributes: tuple[Attribute, ...] = ()


@dataclass(frozen=True)
class Placement:
    """A request matched to an offer: exactly the resources to launch with."""

    request_key: str
    offer_id: str
    agent_id: str
    hostname: str
    ip: str | None
    allocation_role: str | None
    resources: tuple[Resource, ...]  # what goes into TaskInfo.resources, with their roles
    ports: tuple[int, ...]  # the chosen host ports, in order


@dataclass(frozen=True)
class AgentCapacity:
    """An agent's total and currently free resources as the framework knows them."""

    agent_id: str
    hostname: str
    total: tuple[Resource, ...]
    free: tuple[Resource, ...]
    attributes: tuple[Attribute, ...] = ()


# ---------------------------------------------------------------------------- constraints


def validate_constraints(constraints: Iterable[Sequence[str]]) -> tuple[Constraint, ...]:
    """Check and normalise Marathon-style constraints; ``ValueError`` names the bad one."""
    if isinstance(constraints, str | bytes):
        raise ValueError(
            f"constraints must be a list of [field, OPERATOR, value?] lists, not {constraints!r}"
        )
    out: list[Constraint] = []
    for c in constraints:
        if isinstance(c, str | bytes) or not isinstance(c, Sequence):
            raise ValueError(f"constraint {c!r}: expected a list [field, OPERATOR, value?]")
        parts = list(c)
        if not all(isinstance(p, str) for p in parts):
            raise ValueError(f"constraint {c!r}: every element must be a string")
        if len(parts) < 2 or len(parts) > 3:
            raise ValueError(
                f"constraint {c!r}: expected [field, OPERATOR] or [field, OPERATOR, value]"
            )
        field, op = parts[0].strip(), parts[1].strip().upper()
        value = parts[2] if len(parts) == 3 else None
        if not field:
            raise ValueError(f"constraint {c!r}: empty field name")
        if op not in OPERATORS:
            raise ValueError(
                f"constraint {c!r}: unknown operator {parts[1]!r}"
                f" (use one of {', '.join(OPERATORS)})"
            )
        if op in ("LIKE", "UNLIKE", "IS", "MAX_PER") and value is None:
            raise ValueError(f"constraint {c!r}: {op} needs a value")
        if op == "UNIQUE" and value is not None:
            raise ValueError(f"constraint {c!r}: UNIQUE takes no value")
        if op in ("LIKE", "UNLIKE"):
            try:
                re.compile(value)
            except re.error as e:
                raise ValueError(
                    f"constraint {c!r}: bad regular expression {value!r} ({e})"
                ) from None
        if op in ("MAX_PER", "GROUP_BY") and value is not None:
            if not value.strip().isdigit() or int(value) < 1:
                raise ValueError(f"constraint {c!r}: {op} needs a whole number >= 1, not {value!r}")
            value = str(int(value))
        out.append((field, op) if value is None else (field, op, value))
    return tuple(out)


def _field_value(field: str, hostname: str, attributes: Iterable[Attribute]) -> str | None:
    if field in HOSTNAME_FIELDS:
        return hostname
    for a in attributes:
        if a.name == field:
            return a.text()
    return None


def _static_ok(c: Constraint, value: str | None) -> bool:
    """Constraints that depend on the agent alone (not on where other tasks run)."""
    op = c[1]
    if op == "UNLIKE":
        # Marathon: an agent without the attribute satisfies UNLIKE and nothing else.
        return value is None or re.fullmatch(c[2], value) is None
    if value is None:
        return False
    if op == "LIKE":
        return re.fullmatch(c[2], value) is not None
    if op == "IS" or (op == "CLUSTER" and len(c) == 3):
        return value == c[2]
    return True


def _constraint_ok(
    c: Constraint, offer: Offer, placed: Sequence[Placed], universe: Collection[str]
) -> bool:
    value = _field_value(c[0], offer.hostname, offer.attributes)
    if not _static_ok(c, value):
        return False
    op = c[1]
    if op in ("LIKE", "UNLIKE", "IS"):
        return True
    counts = Counter(
        v for p in placed if (v := _field_value(c[0], p.hostname, p.attributes)) is not None
    )
    if op == "UNIQUE":
        return counts[value] == 0
    if op == "MAX_PER":
        return counts[value] < int(c[2])
    if op == "CLUSTER":
        # With a value the static check did it; without, follow where the tasks already are.
        return len(c) == 3 or not counts or value in counts
    # GROUP_BY: only values holding the fewest tasks are acceptable; values not seen yet count
    # as holding none while fewer than the wanted number of groups exist.
    groups = int(c[2]) if len(c) == 3 else len(set(universe) | set(counts))
    fewest = 0 if len(counts) < groups else min(counts.values())
    return counts[value] <= fewest


def _matches(
    request: Request, offer: Offer, placed: Sequence[Placed], universes: dict[str, set[str]]
) -> bool:
    return all(
        _constraint_ok(c, offer, placed, universes.get(c[0], set())) for c in request.constraints
    )


# ---------------------------------------------------------------------------- resource picking


def _role_ok(request: Request, allocation_role: str | None) -> bool:
    return allocation_role is None or allocation_role == request.role


def _roles(request: Request) -> tuple[str, ...]:
    """Roles a request may take resources from, in order of preference."""
    return (UNRESERVED,) if request.role == UNRESERVED else (request.role, UNRESERVED)


def _take(request: Request, have: Sequence[Resource]) -> tuple[list[Resource], list[int]] | None:
    """The resources (and ports) ``request`` would take from ``have``, or None if short.

    Each part taken is a slice of one offered resource with its reservation stack unchanged:
    Mesos matches a task's resources against the offer by name AND reservation, so a
    dynamically reserved ``cpus(spark)`` handed back as a static one is "more than offered".
    """
    roles = _roles(request)
    taken: list[Resource] = []
    for name in SCALARS:
        want = request.amount(name)
        if want <= 0:
            continue
        need = round(want * 1000)
        for role in roles:
            for r in have:
                if need <= 0:
                    break
                if r.name != name or r.role != role or r.scalar is None:
                    continue
                part = min(round(r.scalar * 1000), need)
                if part > 0:
                    taken.append(replace(r, scalar=part / 1000))
                    need -= part
        if need > 0:
            return None
    ports: list[int] = []
    if request.ports:
        for role in roles:
            for r in have:
                if len(ports) >= request.ports:
                    break
                if r.name != "ports" or r.role != role or r.ranges is None:
                    continue
                chosen = first_values(r.ranges, request.ports - len(ports))
                if chosen:
                    taken.append(replace(r, ranges=values_to_ranges(chosen)))
                    ports.extend(chosen)
        if len(ports) < request.ports:
            return None
    return merge(taken), ports


def _has_gpus(resources: Iterable[Resource]) -> bool:
    return scalar(resources, "gpus") > 0


def going_down(unavailability: Unavailability | None, now: float, horizon: float) -> bool:
    """Whether a machine with this ``unavailability`` goes down for maintenance within
    ``horizon`` seconds of ``now`` (seconds since the epoch), or is in its window already;
    a window that is over no longer counts."""
    if unavailability is None:
        return False
    end = unavailability.end
    if end is not None and end <= now:
        return False
    return unavailability.start <= now + horizon


def place(
    requests: Sequence[Request],
    offers: Sequence[Offer],
    placed: Sequence[Placed] = (),
    strategy: str = "spread",
    *,
    gpu_agents: Collection[str] = (),
    now: float = 0.0,
    horizon: float | None = None,
) -> list[Placement]:
    """Match ``requests`` (in order) to ``offers``; unplaceable requests are left out.

    Several requests may share one offer; each offer's resources are consumed as requests
    are placed, so the placements of one offer together never exceed it. ``gpu_agents``
    names agents known to have GPUs even when none are in their current offers (all in use).
    With a maintenance ``horizon`` (seconds), offers of machines ``going_down`` by ``now`` +
    ``horizon`` are left alone.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"placement strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if horizon is not None:
        offers = [o for o in offers if not going_down(o.unavailability, now, horizon)]
    offers = sorted(offers, key=lambda o: (o.hostname, o.id))
    remaining: dict[str, list[Resource]] = {o.id: merge(o.resources) for o in offers}
    gpu_hosts = set(gpu_agents) | {o.agent_id for o in offers if _has_gpus(o.resources)}
    tasks_on = Counter(p.agent_id for p in placed)
    placed_now = list(placed)
    free_cpus: Counter[str] = Counter()
    free_mem: Counter[str] = Counter()
    for o in offers:
        free_cpus[o.agent_id] += scalar(o.resources, "cpus")
        free_mem[o.agent_id] += scalar(o.resources, "mem")
    fields = {c[0] for r in requests for c in r.constraints}
    universes: dict[str, set[str]] = {}
    for o in offers:
        for field in fields:
            if (v := _field_value(field, o.hostname, o.attributes)) is not None:
                universes.setdefault(field, set()).add(v)

    def order(o: Offer) -> tuple:
        free = (free_cpus[o.agent_id], free_mem[o.agent_id])
        if strategy == "spread":
            return (-free[0], -free[1], tasks_on[o.agent_id], o.hostname, o.id)
        return (free[0], free[1], -tasks_on[o.agent_id], o.hostname, o.id)

    out: list[Placement] = []
    for request in requests:
        candidates = []
        for o in offers:
            if not _role_ok(request, o.allocation_role):
                continue
            if not _matches(request, o, placed_now, universes):
                continue
            got = _take(request, remaining[o.id])
            if got is None:
                continue
            candidates.append((o, got))
        if not candidates:
            continue
        if request.gpus == 0:
            plain = [c for c in candidates if c[0].agent_id not in gpu_hosts]
            candidates = plain or candidates
        if request.role != UNRESERVED:
            # Real Mesos offers an agent's unreserved resources to any subscribed role (DRF),
            # so role R's request also fits ordinary agents: an agent holding R's reservations
            # (the Spark cluster's machines for role spark) wins whenever one fits.
            reserved = [c for c in candidates if any(r.role == request.role for r in c[1][0])]
            candidates = reserved or candidates
        offer, (resources, ports) = min(candidates, key=lambda c: order(c[0]))
        remaining[offer.id] = subtract(remaining[offer.id], resources)  # raises if over-allocating
        free_cpus[offer.agent_id] -= scalar(resources, "cpus")
        free_mem[offer.agent_id] -= scalar(resources, "mem")
        tasks_on[offer.agent_id] += 1
        placed_now.append(Placed(offer.agent_id, offer.hostname, offer.attributes))
        out.append(
            Placement(
                request_key=request.key,
                offer_id=offer.id,
                agent_id=offer.agent_id,
                hostname=offer.hostname,
                ip=offer.ip,
                allocation_role=offer.allocation_role,
                resources=tuple(resources),
                ports=tuple(ports),
            )
        )
    return out


# ---------------------------------------------------------------------------- capacity answers


def fits_now(
    request: Request, agents: Sequence[AgentCapacity], placed: Sequence[Placed] = ()
) -> bool:
    """Whether ``request`` could be placed on the agents' currently free resources."""
    return not shortfall(request, agents, placed)


def unmet(request: Request, agents: Sequence[AgentCapacity]) -> str | None:
    """None if some agent could ever hold ``request`` (by its total resources, role and
    attribute constraints), else a message for a person naming what is missing."""
    return _missing(request, agents, (), free=False)


def shortfall(
    request: Request, agents: Sequence[AgentCapacity], placed: Sequence[Placed] = ()
) -> str | None:
    """None if ``request`` fits the agents' free resources now, else what it is waiting for
    (e.g. "no agent has 1 GPU free (most free: 0)")."""
    return _missing(request, agents, placed, free=True)


@dataclass(frozen=True)
class Fit:
    """Whether a request can start: ``kind`` is "now", "wait" or "never"; ``why`` for a person."""

    kind: str
    why: str


def classify(
    request: Request,
    agents: Sequence[AgentCapacity],
    *,
    totals_known: bool = True,
    quota: RoleQuota | None = None,
) -> Fit:
    """Can ``request`` start now, must it wait, or can no agent ever hold it?

    "never" needs the agents' totals (``totals_known``): offers alone show only what is free
    to this framework, which is no basis for "never". No agents seen yet means "wait".
    ``quota``: the request's role's quota, when it has limits.
    """
    if not agents:
        return Fit("wait", "cluster not seen yet")
    if totals_known:
        why = unmet(request, agents) or (quota and beyond_quota(request, quota, agents))
        if why:
            return Fit("never", why)
    waiting = shortfall(request, agents)
    if waiting:
        held = quota and quota_shortfall(request, quota, agents)
        return Fit("wait", f"waiting for {held}" if held else f"waiting: {waiting}")
    return Fit("now", "resources free now")


def _quota_terms(request: Request, quota: RoleQuota):
    """(name, wanted, limit) for each scalar the request wants and the quota limits."""
    if quota.role != request.role:
        raise ValueError(f"quota of role {quota.role!r} given for a request of {request.role!r}")
    for name in SCALARS:
        want, limit = request.amount(name), quota.limit(name)
        if want > 0 and limit is not None:
            yield name, want, limit


def beyond_quota(request: Request, quota: RoleQuota, agents: Sequence[AgentCapacity]) -> str | None:
    """Why ``request`` can never fit its role's quota limit, else None.

    A role's reservations count towards its limit but are offered whatever the limit (Mesos's
    allocator caps only unreserved resources): one task can hold the role's reservations on
    one agent plus what the limit leaves beyond all of the role's reservations.
    """
    for name, want, limit in _quota_terms(request, quota):
        reserved = [scalar(a.total, name, request.role) for a in agents]
        if request.role == UNRESERVED:
            reserved = [0.0]
        most = max(reserved, default=0.0) + max(0.0, limit - sum(reserved))
        if round(want * 1000) > round(most * 1000):
            return (
                f"the quota of role {request.role} allows it {_noun(name, limit)} at most"
                f" (its limit, set by the cluster's operator), and this server asks for"
                f" {_noun(name, want)}"
            )
    return None


def quota_shortfall(
    request: Request, quota: RoleQuota, agents: Sequence[AgentCapacity]
) -> str | None:
    """What the role's quota cannot give ``request`` while its other tasks hold what they do
    (the role's consumption), else None: "role team's quota: 0.75 of its 1 cpu limit is in
    use, and this server needs 0.75 cpus"."""
    for name, want, limit in _quota_terms(request, quota):
        used = quota.used(name)
        reserved_free = 0.0
        if request.role != UNRESERVED:
            reserved_free = max((scalar(a.free, name, request.role) for a in agents), default=0.0)
        room = max(0.0, limit - used) + reserved_free
        if round(want * 1000) > round(room * 1000):
            return (
                f"role {request.role}'s quota: {number(used)} of its {_noun(name, limit)}"
                f" limit is in use, and this server needs {_noun(name, want)}"
            )
    return None


def describe(request: Request) -> str:
    """What ``request`` asks for, for a person: "2 cpus, 4096 MiB memory, 1 GPU" (Mesos's "MB"
    of memory and disk are MiB, as the options form shows them)."""
    cpus = f"{number(request.cpus)} cpu{'' if request.cpus == 1 else 's'}"
    parts = [cpus, f"{number(request.mem)} MiB memory"]
    if request.gpus:
        parts.append(f"{request.gpus} GPU{'s' if request.gpus > 1 else ''}")
    if request.role != "*":
        parts.append(f"role {request.role}")
    return ", ".join(parts)


def free_gpus(agents: Sequence[AgentCapacity]) -> int | None:
    """GPUs free across the agents; None before any agent is seen."""
    if not agents:
        return None
    return int(sum(r.scalar or 0 for a in agents for r in a.free if r.name == "gpus"))


def _noun(name: str, amount: float) -> str:
    n = number(amount)
    if name == "gpus":
        return f"{n} GPU" if amount == 1 else f"{n} GPUs"
    if name == "mem":
        return f"{n} MiB of memory"
    if name == "disk":
        return f"{n} MiB of disk"
    if name == "ports":
        return f"{n} port" if amount == 1 else f"{n} ports"
    return f"{n} cpus" if amount != 1 else f"{n} cpu"


def _missing(
    request: Request, agents: Sequence[AgentCapacity], placed: Sequence[Placed], *, free: bool
) -> str | None:
    if not agents:
        return "the cluster has no agents"
    field_universe: dict[str, set[str]] = {}
    for a in agents:
        for c in request.constraints:
            if (v := _field_value(c[0], a.hostname, a.attributes)) is not None:
                field_universe.setdefault(c[0], set()).add(v)

    def as_offer(a: AgentCapacity) -> Offer:
        res = a.free if free else a.total
        return Offer(a.agent_id, a.agent_id, a.hostname, None, None, tuple(res), a.attributes)

    # Capacity "ever": only constraints that depend on the agent alone can rule it out.
    matching = []
    for a in sorted(agents, key=lambda a: (a.hostname, a.agent_id)):
        o = as_offer(a)
        for c in request.constraints:
            value = _field_value(c[0], a.hostname, a.attributes)
            if free:
                ok = _constraint_ok(c, o, placed, field_universe.get(c[0], set()))
            else:
                ok = _static_ok(c, value)
            if not ok:
                break
        else:
            matching.append(o)
    if not matching:
        # "now" failures can come from UNIQUE/MAX_PER/GROUP_BY and the tasks already placed.
        verb = "currently matches" if free else "matches"
        if len(request.constraints) == 1:
            return f"no agent {verb} constraint {' '.join(request.constraints[0])}"
        names = "; ".join(" ".join(c) for c in request.constraints)
        return f"no agent {verb} the constraints {names}"
    for o in matching:
        if _take(request, o.resources) is not None:
            return None
    suffix = ""
    if request.constraints:
        suffix = " among agents matching " + "; ".join(" ".join(c) for c in request.constraints)
    role = "" if request.role == UNRESERVED else f" in role {request.role}"
    verb = "has" if free else "offers"
    state = " free" if free else ""
    largest = "most free" if free else "largest"
    roles = _roles(request)
    for name in ("gpus", "cpus", "mem", "disk"):
        want = request.amount(name)
        if want <= 0:
            continue
        best = max(sum(scalar(o.resources, name, r) for r in roles) for o in matching)
        if round(best * 1000) < round(want * 1000):
            what = "has" if name == "gpus" else verb
            have = f"({largest}: {number(best)})"
            return f"no agent {what} {_noun(name, want)}{role}{state} {have}{suffix}"
    if request.ports:
        best = max(
            sum(len(first_values(ranges_of(o.resources, "ports", r), request.ports)) for r in roles)
            for o in matching
        )
        if best < request.ports:
            what = _noun("ports", request.ports)
            return f"no agent {verb} {what}{role}{state} ({largest}: {best}){suffix}"
    wanted = ", ".join(_noun(n, request.amount(n)) for n in SCALARS if request.amount(n) > 0) + (
        f", {_noun('ports', request.ports)}" if request.ports else ""
    )
    return f"no single agent {verb} {wanted}{role}{state} together{suffix}"


__all__ = [
    "AgentCapacity",
    "Fit",
    "Placed",
    "Placement",
    "Request",
    "classify",
    "beyond_quota",
    "describe",
    "fits_now",
    "going_down",
    "free_gpus",
    "place",
    "quota_shortfall",
    "shortfall",
    "unmet",
    "validate_constraints",
]
