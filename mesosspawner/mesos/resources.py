"""Mesos resources and attributes: parse, format, convert to/from v1 JSON, and do arithmetic.

Pure. The text syntax is the one of ``mesos-agent --resources`` and ``--attributes``
(``cpus(spark):4;ports:[31000-31999]``, ``rack:r1;zone:12``), as parsed by Mesos's
``Resources::parse`` / ``Attributes::parse`` and ``values::parse``. Shared by localmesos,
placement and taskinfo so every part of the project does the same arithmetic.

A resource keeps its whole reservation stack (static or dynamic, principal, labels, refinements)
through parsing, arithmetic and formatting, because Mesos matches a task's resources against an
offer by name AND reservation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

UNRESERVED = "*"
STATIC = "STATIC"
DYNAMIC = "DYNAMIC"
# Mesos compares scalars with a fixed-point precision of three decimal places.
_SCALE = 1000

Range = tuple[int, int]


class ResourceError(ValueError):
    """A resource or attribute string (or JSON) is malformed; the message names the text."""


@dataclass(frozen=True)
class Reservation:
    """One level of a resource's reservation stack (``Resource.ReservationInfo``).

    STATIC reservations come from the agent's ``--resources`` (``cpus(spark):4``); DYNAMIC ones
    from a RESERVE operation (``/master/reserve`` or a framework's ACCEPT) and carry the
    reserving principal and labels. Mesos tells them apart by exactly these fields, so a task
    must hand back the stack it was offered, unchanged.
    """

    role: str
    type: str = STATIC
    principal: str | None = None
    labels: tuple[tuple[str, str | None], ...] = ()

    def __post_init__(self) -> None:
        if self.type not in (STATIC, DYNAMIC):
            raise ResourceError(f"reservation type {self.type!r}: use STATIC or DYNAMIC")
        if not _valid_role(self.role) or self.role == UNRESERVED:
            raise ResourceError(f"reservation role {self.role!r} is not a role one can reserve")


@dataclass(frozen=True)
class Resource:
    """One resource of one name and reservation: exactly one of scalar, ranges, items is set.

    ``role`` is the role the resource is reserved for (``*``: unreserved), which is the last
    entry of ``reservations``. A resource built with a role and no stack is statically
    reserved; one built with a stack takes its role from it. Resources differing only in their
    stack (``cpus(spark)`` static and ``cpus(spark)`` reserved by ``/master/reserve``) are
    different resources to every operation here, as to Mesos.
    """

    name: str
    role: str = UNRESERVED
    scalar: float | None = None
    ranges: tuple[Range, ...] | None = None
    items: frozenset[str] | None = None
    reservations: tuple[Reservation, ...] = ()

    def __post_init__(self) -> None:
        if self.reservations:
            top = self.reservations[-1].role
            if self.role == UNRESERVED:
                object.__setattr__(self, "role", top)
            elif self.role != top:
                raise ResourceError(
                    f"resource {self.name}: role {self.role!r} is not its reservation's ({top!r})"
                )
        elif self.role != UNRESERVED:
            object.__setattr__(self, "reservations", (Reservation(self.role),))

    @property
    def type(self) -> str:
        if self.scalar is not None:
            return "SCALAR"
        if self.ranges is not None:
            return "RANGES"
        return "SET"

    @property
    def key(self) -> tuple[str, tuple[Reservation, ...]]:
        return (self.name, self.reservations)

    @property
    def dynamic(self) -> bool:
        """Reserved by a RESERVE operation (its reservation is DYNAMIC), not by the agent."""
        return bool(self.reservations) and self.reservations[-1].type == DYNAMIC

    def is_empty(self) -> bool:
        if self.scalar is not None:
            return _fixed(self.scalar) == 0
        if self.ranges is not None:
            return not self.ranges
        return not self.items


@dataclass(frozen=True)
class Attribute:
    """An agent attribute: TEXT (str), SCALAR (float) or RANGES (tuple of ranges)."""

    name: str
    value: str | float | tuple[Range, ...]

    @property
    def type(self) -> str:
        if isinstance(self.value, str):
            return "TEXT"
        if isinstance(self.value, tuple):
            return "RANGES"
        return "SCALAR"

    def text(self) -> str:
        """The value as constraint matching sees it (Marathon compares the string form)."""
        if isinstance(self.value, str):
            return self.value
        if isinstance(self.value, tuple):
            return format_ranges(self.value)
        return _format_scalar(self.value)


# ---------------------------------------------------------------------------- scalars and ranges


def _fixed(value: float) -> int:
    return round(value * _SCALE)


def _unfixed(value: int) -> float:
    return value / _SCALE


def _format_scalar(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}".rstrip("0").rstrip(".")


def normalize_ranges(ranges: Iterable[Range]) -> tuple[Range, ...]:
    """Sort and coalesce overlapping or adjacent ranges."""
    out: list[list[int]] = []
    for begin, end in sorted(ranges):
        if out and begin <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([begin, end])
    return tuple((b, e) for b, e in out)


def subtract_ranges(have: Sequence[Range], take: Sequence[Range]) -> tuple[Range, ...]:
    """``have`` minus ``take`` (parts of ``take`` outside ``have`` are ignored)."""
    result = list(normalize_ranges(have))
    for tb, te in normalize_ranges(take):
        nxt: list[Range] = []
        for b, e in result:
            if te < b or tb > e:
                nxt.append((b, e))
                continue
            if b < tb:
                nxt.append((b, tb - 1))
            if te < e:
                nxt.append((te + 1, e))
        result = nxt
    return tuple(result)


def ranges_contain(have: Sequence[Range], want: Sequence[Range]) -> bool:
    have_n = normalize_ranges(have)
    return all(any(b <= wb and we <= e for b, e in have_n) for wb, we in normalize_ranges(want))


def ranges_size(ranges: Sequence[Range]) -> int:
    return sum(e - b + 1 for b, e in ranges)


def first_values(ranges: Sequence[Range], count: int) -> list[int]:
    """The lowest ``count`` values of ``ranges`` (fewer if the ranges hold fewer)."""
    out: list[int] = []
    for b, e in normalize_ranges(ranges):
        for v in range(b, e + 1):
            if len(out) == count:
                return out
            out.append(v)
    return out


def values_to_ranges(values: Iterable[int]) -> tuple[Range, ...]:
    return normalize_ranges((v, v) for v in values)


def format_ranges(ranges: Sequence[Range]) -> str:
    return "[" + ", ".join(f"{b}-{e}" for b, e in ranges) + "]"


# ---------------------------------------------------------------------------- text parsing


def _parse_value(text: str, context: str) -> float | tuple[Range, ...] | frozenset[str] | str:
    """Mesos ``values::parse``: ``[a-b, ...]`` ranges, ``{a,b}`` set, a number, else text."""
    value = text.strip()
    if value.startswith("["):
        if not value.endswith("]"):
            raise ResourceError(f"{context}: ranges {value!r} must end with ']'")
        ranges: list[Range] = []
        for token in value[1:-1].split(","):
            token = token.strip()
            if not token:
                continue
            bounds = token.split("-")
            if len(bounds) != 2 or not all(p.strip().isdigit() for p in bounds):
                raise ResourceError(
                    f"{context}: range {token!r} is not of the form BEGIN-END (e.g. 31000-31999)"
                )
            begin, end = int(bounds[0]), int(bounds[1])
            if end < begin:
                raise ResourceError(f"{context}: range {token!r} ends before it begins")
            ranges.append((begin, end))
        return normalize_ranges(ranges)
    if value.startswith("{"):
        if not value.endswith("}"):
            raise ResourceError(f"{context}: set {value!r} must end with '}}'")
        items = [t.strip() for t in value[1:-1].split(",") if t.strip()]
        return frozenset(items)
    try:
        number = float(value)
    except ValueError:
        return value
    if not math.isfinite(number):
        raise ResourceError(f"{context}: {value!r} is not a finite number")
    return number


def parse_resources(text: str, default_role: str = UNRESERVED) -> list[Resource]:
    """Parse ``mesos-agent --resources`` text (``name(role):value;...``) or its JSON array form."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except ValueError as e:
            raise ResourceError(f"resources {text!r}: invalid JSON ({e})") from None
        if not isinstance(data, list):
            raise ResourceError(f"resources {text!r}: JSON form must be an array")
        return merge([resource_from_json(r) for r in data])
    out: list[Resource] = []
    for token in stripped.replace("\n", ";").split(";"):
        token = token.strip()
        if not token:
            continue
        pair = token.split(":")
        if len(pair) != 2:
            raise ResourceError(f"resource {token!r}: expected NAME:VALUE or NAME(ROLE):VALUE")
        name, raw = pair[0].strip(), pair[1]
        role = default_role
        if "(" in name:
            if not name.endswith(")") or name.count("(") != 1:
                raise ResourceError(f"resource {token!r}: role must be written as NAME(ROLE)")
            name, role = name[:-1].split("(")
            role = role.strip()
            if not _valid_role(role):
                raise ResourceError(f"resource {token!r}: invalid role {role!r}")
        if not name or not _valid_name(name):
            raise ResourceError(f"resource {token!r}: invalid resource name {name!r}")
        value = _parse_value(raw, f"resource {token!r}")
        if isinstance(value, str):
            raise ResourceError(
                f"resource {token!r}: value {raw.strip()!r} is not a number, [ranges] or {{set}}"
            )
        out.append(_make(name, role, value, token))
    return merge(out)


def _make(
    name: str, role: str, value: float | tuple[Range, ...] | frozenset[str], context: str
) -> Resource:
    if isinstance(value, float):
        if value < 0:
            raise ResourceError(f"resource {context!r}: negative quantity {value}")
        if name == "gpus" and not float(value).is_integer():
            raise ResourceError(f"resource {context!r}: gpus must be a whole number")
        return Resource(name, role, scalar=value)
    if isinstance(value, tuple):
        return Resource(name, role, ranges=value)
    return Resource(name, role, items=value)


def _valid_name(name: str) -> bool:
    return all(c.isalnum() or c in "_-./" for c in name)


def _valid_role(role: str) -> bool:
    # Mesos roles: not empty, not "." / "..", no leading '-', no whitespace or '\x7f', '/' allowed
    # for hierarchical roles, '*' for unreserved.
    if role == UNRESERVED:
        return True
    if not role or role in (".", "..") or role.startswith("-"):
        return False
    return not any(c.isspace() or c == "\x7f" or c == "*" for c in role) and all(
        part not in ("", ".", "..") for part in role.split("/")
    )


def parse_attributes(text: str) -> list[Attribute]:
    """Parse ``mesos-agent --attributes`` text: ``name:value;...`` (TEXT, SCALAR or RANGES)."""
    out: list[Attribute] = []
    for token in text.replace("\n", ";").split(";"):
        token = token.strip()
        if not token:
            continue
        pair = token.split(":")
        if len(pair) != 2 or not pair[0].strip():
            raise ResourceError(f"attribute {token!r}: expected NAME:VALUE")
        name = pair[0].strip()
        value = _parse_value(pair[1], f"attribute {token!r}")
        if isinstance(value, frozenset):
            raise ResourceError(f"attribute {token!r}: sets are not valid attribute values")
        if isinstance(value, str) and not value:
            raise ResourceError(f"attribute {token!r}: empty value")
        out.append(Attribute(name, value))
    return out


def format_resources(resources: Iterable[Resource]) -> str:
    """The ``--resources`` text; a dynamic or refined reservation as Mesos prints it
    (``cpus(reservations: [(DYNAMIC,spark,ops)]):2``), which only people read."""
    parts = []
    for r in resources:
        if r.role == UNRESERVED:
            head = r.name
        elif r.reservations == (Reservation(r.role),):
            head = f"{r.name}({r.role})"
        else:
            stack = ",".join(
                "(" + ",".join(x for x in (v.type, v.role, v.principal) if x) + ")"
                for v in r.reservations
            )
            head = f"{r.name}(reservations: [{stack}])"
        parts.append(f"{head}:{format_value(r)}")
    return ";".join(parts)


def format_value(r: Resource) -> str:
    if r.scalar is not None:
        return _format_scalar(r.scalar)
    if r.ranges is not None:
        return format_ranges(r.ranges)
    return "{" + ",".join(sorted(r.items or ())) + "}"


def format_attributes(attributes: Iterable[Attribute]) -> str:
    return ";".join(f"{a.name}:{a.text()}" for a in attributes)


# ---------------------------------------------------------------------------- v1 JSON


def _labels_from_json(data: object, context: str) -> tuple[tuple[str, str | None], ...]:
    if data is None:
        return ()
    if not isinstance(data, dict) or not isinstance(data.get("labels", []), list):
        raise ResourceError(f"{context}: labels must be {{'labels': [{{key, value}}, ...]}}")
    out = []
    for label in data.get("labels", []):
        if not isinstance(label, dict) or not isinstance(label.get("key"), str):
            raise ResourceError(f"{context}: label {label!r} has no string 'key'")
        value = label.get("value")
        out.append((label["key"], None if value is None else str(value)))
    return tuple(out)


def _labels_to_json(labels: tuple[tuple[str, str | None], ...]) -> dict:
    return {"labels": [{"key": k} if v is None else {"key": k, "value": v} for k, v in labels]}


def reservation_from_json(data: dict, context: str = "reservation") -> Reservation:
    """One ``ReservationInfo`` of a ``reservations`` stack (RESERVATION_REFINEMENT format)."""
    if not isinstance(data, dict):
        raise ResourceError(f"{context}: {data!r} is not a JSON object")
    role = data.get("role")
    if not isinstance(role, str):
        raise ResourceError(f"{context}: {data!r} names no role")
    principal = data.get("principal")
    return Reservation(
        role,
        str(data.get("type") or STATIC),
        None if principal is None else str(principal),
        _labels_from_json(data.get("labels"), context),
    )


def reservation_to_json(v: Reservation) -> dict:
    out: dict = {"type": v.type, "role": v.role}
    if v.principal is not None:
        out["principal"] = v.principal
    if v.labels:
        out["labels"] = _labels_to_json(v.labels)
    return out


def _stack_from_json(data: dict, name: str) -> tuple[Reservation, ...]:
    """The reservation stack: ``reservations`` (refinement and state.json), else the legacy
    ``role`` plus ``reservation`` ({principal, labels}: present only for dynamic ones)."""
    stack = data.get("reservations")
    if stack:
        if not isinstance(stack, list):
            raise ResourceError(f"resource {name}: 'reservations' must be a list, not {stack!r}")
        return tuple(reservation_from_json(r, f"resource {name}: reservation") for r in stack)
    role = data.get("role") or UNRESERVED
    if role == UNRESERVED:
        return ()
    legacy = data.get("reservation")
    if legacy is None:
        return (Reservation(role),)
    if not isinstance(legacy, dict):
        raise ResourceError(f"resource {name}: 'reservation' must be an object, not {legacy!r}")
    principal = legacy.get("principal")
    labels = _labels_from_json(legacy.get("labels"), f"resource {name}: reservation")
    return (Reservation(role, DYNAMIC, None if principal is None else str(principal), labels),)


def resource_from_json(data: dict) -> Resource:
    """A v1 ``Resource`` JSON object, its reservation stack kept (either format)."""
    if not isinstance(data, dict):
        raise ResourceError(f"resource {data!r}: expected a JSON object")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise ResourceError(f"resource {data!r}: missing 'name'")
    stack = _stack_from_json(data, name)
    kind = data.get("type")
    try:
        if kind == "SCALAR" or (kind is None and "scalar" in data):
            value = float(data["scalar"]["value"])
            if not math.isfinite(value) or value < 0:
                raise ResourceError(f"resource {name}: invalid scalar {value}")
            return Resource(name, scalar=value, reservations=stack)
        if kind == "RANGES" or (kind is None and "ranges" in data):
            rs = data["ranges"].get("range", [])
            ranges = normalize_ranges((int(r["begin"]), int(r["end"])) for r in rs)
            return Resource(name, ranges=ranges, reservations=stack)
        if kind == "SET" or (kind is None and "set" in data):
            items = frozenset(str(i) for i in data["set"].get("item", []))
            return Resource(name, items=items, reservations=stack)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ResourceError(f"resource {name}: malformed {kind or 'value'} ({e})") from None
    raise ResourceError(f"resource {name}: unknown type {kind!r}")


def resource_to_json(
    r: Resource,
    *,
    refinement: bool = False,
    allocation_role: str | None = None,
    endpoint: bool = False,
) -> dict:
    """A v1 ``Resource`` JSON object in the format a framework with/without
    RESERVATION_REFINEMENT expects: the ``reservations`` stack, or the legacy ``role`` plus
    ``reservation`` ({principal, labels}) for a dynamic reservation. ``endpoint``: both, as
    Mesos's HTTP endpoints (state.json) write them.

    ``ResourceError`` for a refined reservation (a stack of two or more) in the legacy format:
    Mesos never offers those to a framework without the capability.
    """
    out: dict = {"name": r.name, "type": r.type}
    if r.scalar is not None:
        out["scalar"] = {"value": r.scalar}
    elif r.ranges is not None:
        out["ranges"] = {"range": [{"begin": b, "end": e} for b, e in r.ranges]}
    else:
        out["set"] = {"item": sorted(r.items or ())}
    if (refinement or endpoint) and r.reservations:
        out["reservations"] = [reservation_to_json(v) for v in r.reservations]
    if not refinement or endpoint:
        if len(r.reservations) > 1 and not endpoint:
            raise ResourceError(
                f"resource {format_resources([r])}: a refined reservation needs the"
                " RESERVATION_REFINEMENT capability"
            )
        out["role"] = r.role
        if r.dynamic and len(r.reservations) == 1:
            top = r.reservations[-1]
            legacy: dict = {}
            if top.principal is not None:
                legacy["principal"] = top.principal
            if top.labels:
                legacy["labels"] = _labels_to_json(top.labels)
            out["reservation"] = legacy
    if allocation_role is not None:
        out["allocation_info"] = {"role": allocation_role}
    return out


def resources_from_json(data: Iterable[dict]) -> list[Resource]:
    return merge(resource_from_json(d) for d in data)


def resources_to_json(resources: Iterable[Resource], **kwargs) -> list[dict]:
    return [resource_to_json(r, **kwargs) for r in resources]


def attribute_to_json(a: Attribute) -> dict:
    if isinstance(a.value, str):
        return {"name": a.name, "type": "TEXT", "text": {"value": a.value}}
    if isinstance(a.value, tuple):
        rs = [{"begin": b, "end": e} for b, e in a.value]
        return {"name": a.name, "type": "RANGES", "ranges": {"range": rs}}
    return {"name": a.name, "type": "SCALAR", "scalar": {"value": a.value}}


def attribute_from_json(data: dict) -> Attribute:
    name = data["name"]
    kind = data.get("type")
    if kind == "TEXT" or (kind is None and "text" in data):
        return Attribute(name, str(data["text"]["value"]))
    if kind == "RANGES" or (kind is None and "ranges" in data):
        rs = data["ranges"].get("range", [])
        return Attribute(name, normalize_ranges((int(r["begin"]), int(r["end"])) for r in rs))
    return Attribute(name, float(data["scalar"]["value"]))


def attributes_state_json(attributes: Iterable[Attribute]) -> dict:
    """Attributes as state.json shows them: ``{"rack": "r1", "zone": 12}``."""
    out: dict = {}
    for a in attributes:
        out[a.name] = format_ranges(a.value) if isinstance(a.value, tuple) else a.value
    return out


def resources_state_json(resources: Iterable[Resource]) -> dict:
    """Resources as state.json shows them: ``{"cpus": 8.0, "ports": "[31000-31999]"}``."""
    out: dict = {"cpus": 0.0, "mem": 0.0, "disk": 0.0, "gpus": 0.0}
    for r in merge(unreserved(r) for r in resources):
        out[r.name] = r.scalar if r.scalar is not None else format_value(r)
    return out


# ---------------------------------------------------------------------------- arithmetic


def unreserved(r: Resource) -> Resource:
    """``r`` without any reservation (for totals that ignore roles)."""
    return replace(r, role=UNRESERVED, reservations=())


def merge(resources: Iterable[Resource]) -> list[Resource]:
    """Combine resources of the same name and reservation stack; drop empty ones. Order is
    first-seen."""
    acc: dict[tuple, Resource] = {}
    for r in resources:
        prev = acc.get(r.key)
        if prev is None:
            acc[r.key] = r
            continue
        if prev.type != r.type:
            raise ResourceError(f"resource {r.name}: mixes {prev.type} and {r.type}")
        if r.scalar is not None:
            total = _unfixed(_fixed(prev.scalar or 0) + _fixed(r.scalar))
            acc[r.key] = replace(prev, scalar=total)
        elif r.ranges is not None:
            acc[r.key] = replace(prev, ranges=normalize_ranges((prev.ranges or ()) + r.ranges))
        else:
            acc[r.key] = replace(prev, items=(prev.items or frozenset()) | (r.items or frozenset()))
    return [r for r in acc.values() if not r.is_empty()]


def contains(have: Iterable[Resource], want: Iterable[Resource]) -> bool:
    """Whether ``have`` holds every resource of ``want`` (same name and reservation stack)."""
    index = {r.key: r for r in merge(have)}
    for w in merge(want):
        h = index.get(w.key)
        if h is None or h.type != w.type:
            return False
        if w.scalar is not None and _fixed(h.scalar or 0) < _fixed(w.scalar):
            return False
        if w.ranges is not None and not ranges_contain(h.ranges or (), w.ranges):
            return False
        if w.items is not None and not w.items <= (h.items or frozenset()):
            return False
    return True


def subtract(have: Iterable[Resource], take: Iterable[Resource]) -> list[Resource]:
    """``have`` minus ``take``; raises ``ResourceError`` unless ``have`` contains ``take``."""
    have_l = merge(have)
    take_l = merge(take)
    if not contains(have_l, take_l):
        raise ResourceError(
            f"{format_resources(take_l)} is not contained in {format_resources(have_l)}"
        )
    index = {r.key: r for r in take_l}
    out = []
    for h in have_l:
        t = index.get(h.key)
        if t is None:
            out.append(h)
        elif h.scalar is not None:
            out.append(replace(h, scalar=_unfixed(_fixed(h.scalar) - _fixed(t.scalar or 0))))
        elif h.ranges is not None:
            out.append(replace(h, ranges=subtract_ranges(h.ranges, t.ranges or ())))
        else:
            out.append(replace(h, items=(h.items or frozenset()) - (t.items or frozenset())))
    return [r for r in out if not r.is_empty()]


def scalar(resources: Iterable[Resource], name: str, role: str | None = None) -> float:
    """Total scalar ``name`` (of ``role``, or of every role when None)."""
    total = 0
    for r in resources:
        if r.name == name and r.scalar is not None and (role is None or r.role == role):
            total += _fixed(r.scalar)
    return _unfixed(total)


def ranges_of(
    resources: Iterable[Resource], name: str, role: str | None = None
) -> tuple[Range, ...]:
    out: list[Range] = []
    for r in resources:
        if r.name == name and r.ranges is not None and (role is None or r.role == role):
            out.extend(r.ranges)
    return normalize_ranges(out)


def by_role(resources: Iterable[Resource], roles: Iterable[str]) -> list[Resource]:
    wanted = set(roles)
    return [r for r in resources if r.role in wanted]
