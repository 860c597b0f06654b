"""Mesos v1 scheduler events as typed, frozen values.

``parse`` turns one decoded RecordIO record (a JSON object) into one of the classes below, so
the client only moves events and the framework reads fields instead of digging through dicts.
Offers are parsed here once, resources and attributes included, into ``Offer`` values that
placement matches as they are. Pure: plain data in, plain data out.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from .resources import (
    Attribute,
    Resource,
    ResourceError,
    attribute_from_json,
    merge,
    resource_from_json,
)
from .wire import value_of

__all__ = [
    "Error",
    "Event",
    "Failure",
    "Heartbeat",
    "IGNORED_TYPES",
    "InverseOffer",
    "InverseOffers",
    "MalformedEvent",
    "Message",
    "Offer",
    "Offers",
    "Rescind",
    "RescindInverseOffer",
    "Subscribed",
    "TaskStatus",
    "Unavailability",
    "offer_from_json",
    "parse",
    "unavailability_from_json",
]

# Event types Mesos sends that nothing here needs (operation feedback).
IGNORED_TYPES = frozenset({"UPDATE_OPERATION_STATUS"})
DEFAULT_HEARTBEAT = 15.0  # seconds, when SUBSCRIBED does not say


class MalformedEvent(ValueError):
    """A record that is not a well-formed event of its type."""


@dataclass(frozen=True)
class Subscribed:
    framework_id: str
    heartbeat_interval: float = DEFAULT_HEARTBEAT
    master_info: dict | None = None
    raw: dict = field(default_factory=dict, compare=False)  # event["subscribed"]


@dataclass(frozen=True)
class Unavailability:
    """When a machine is scheduled to go down (``Unavailability`` in mesos.proto): from
    ``start`` (seconds since the epoch) for ``duration`` seconds, or for good (None)."""

    start: float
    duration: float | None = None

    @property
    def end(self) -> float | None:
        return None if self.duration is None else self.start + self.duration


def unavailability_from_json(data: Any) -> Unavailability | None:
    """``{"start": {"nanoseconds": N}, "duration": {"nanoseconds": D}}`` -> Unavailability;
    None when absent. ``ResourceError`` when present but unreadable."""
    if data is None:
        return None
    try:
        start = int(data["start"]["nanoseconds"]) / 1e9
        duration = data.get("duration")
        length = None if duration is None else int(duration["nanoseconds"]) / 1e9
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ResourceError(f"unavailability {str(data)[:200]}: bad or missing {e}") from None
    return Unavailability(start, length)


@dataclass(frozen=True)
class Offer:
    """One v1 ``Offer`` as the framework uses it: where, for which role, what (resources
    merged by name and role), the agent's attributes, and when its machine goes down for
    maintenance (``unavailability``), if it is scheduled to."""

    id: str
    agent_id: str
    hostname: str
    ip: str | None  # url.address.ip: how the hub reaches the agent (hostnames need not resolve)
    allocation_role: str | None  # None: the master does not allocate by role (no MULTI_ROLE)
    resources: tuple[Resource, ...]
    attributes: tuple[Attribute, ...] = ()
    raw: dict = field(default_factory=dict, compare=False, repr=False)  # the Offer JSON
    unavailability: Unavailability | None = None


@dataclass(frozen=True)
class Offers:
    offers: tuple[Offer, ...]
    # (offer id, or "" if unreadable, and why) of offers that could not be read: the framework
    # declines them; one bad offer never costs the stream or the other offers.
    malformed: tuple[tuple[str, str], ...] = ()


# Resources with these fields need operations (persistent volumes, revocable or shared use,
# resource providers) that a notebook launch does not perform: leave them alone.
_SPECIAL_RESOURCE_FIELDS = ("disk", "revocable", "shared", "provider_id")


def offer_from_json(data: dict) -> Offer:
    """Parse one v1 ``Offer`` JSON object (as in an OFFERS event); ``ResourceError`` says what
    is wrong with it."""
    try:
        offer_id = data["id"]["value"]
        agent_id = data["agent_id"]["value"]
        hostname = data["hostname"]
    except (KeyError, TypeError) as e:
        raise ResourceError(f"offer {str(data)[:200]}: missing field {e}") from None
    url = data.get("url") or {}
    ip = (url.get("address") or {}).get("ip") or None
    allocation_role = (data.get("allocation_info") or {}).get("role")
    plain = [
        r for r in data.get("resources", []) if not any(f in r for f in _SPECIAL_RESOURCE_FIELDS)
    ]
    resources = tuple(merge(resource_from_json(r) for r in plain))
    attributes = tuple(attribute_from_json(a) for a in data.get("attributes", []))
    unavailability = unavailability_from_json(data.get("unavailability"))
    return Offer(
        offer_id,
        agent_id,
        hostname,
        ip,
        allocation_role,
        resources,
        attributes,
        data,
        unavailability,
    )


def _offers(items: list) -> Offers:
    parsed: list[Offer] = []
    malformed: list[tuple[str, str]] = []
    for data in items:
        try:
            parsed.append(offer_from_json(data))
        except (ResourceError, KeyError, ValueError, TypeError, AttributeError) as e:
            offer_id = value_of(data.get("id")) if isinstance(data, dict) else None
            malformed.append((str(offer_id or ""), str(e)))
    return Offers(tuple(parsed), tuple(malformed))


@dataclass(frozen=True)
class TaskStatus:
    task_id: str
    state: str = "TASK_UNKNOWN"
    agent_id: str | None = None
    reason: str = ""
    message: str = ""
    source: str | None = None
    uuid: str | None = None  # present iff the update must be acknowledged
    healthy: bool | None = None
    raw: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, status: dict) -> TaskStatus:
        if not isinstance(status, dict):
            raise MalformedEvent(f"a TaskStatus must be a JSON object, not {status!r:.100}")
        healthy = status.get("healthy")
        return cls(
            task_id=value_of(status.get("task_id")) or "",
            state=str(status.get("state") or "TASK_UNKNOWN"),
            agent_id=value_of(status.get("agent_id")),
            reason=str(status.get("reason") or ""),
            message=str(status.get("message") or ""),
            source=status.get("source"),
            uuid=status["uuid"] if "uuid" in status else None,
            healthy=None if healthy is None else bool(healthy),
            raw=status,
        )


@dataclass(frozen=True)
class Rescind:
    offer_id: str


@dataclass(frozen=True)
class InverseOffer:
    """The master asks for an agent's resources back before a maintenance window
    (``InverseOffer`` in mesos.proto; maintenance always asks for all of them)."""

    id: str
    agent_id: str | None  # None: all the framework's resources, everywhere
    hostname: str | None  # url.address.hostname, when the master says
    unavailability: Unavailability


@dataclass(frozen=True)
class InverseOffers:
    inverse_offers: tuple[InverseOffer, ...]


@dataclass(frozen=True)
class RescindInverseOffer:
    inverse_offer_id: str


@dataclass(frozen=True)
class Error:
    message: str


@dataclass(frozen=True)
class Failure:
    agent_id: str | None = None
    executor_id: str | None = None
    status: int | None = None  # the executor's exit status, when an executor failed
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Heartbeat:
    pass


@dataclass(frozen=True)
class Message:
    agent_id: str | None
    executor_id: str | None
    data: bytes
    raw: dict = field(default_factory=dict, compare=False)


Event = (
    Subscribed
    | Offers
    | TaskStatus
    | Rescind
    | Error
    | Failure
    | Heartbeat
    | Message
    | InverseOffers
    | RescindInverseOffer
)


def _inverse_offer(data: dict) -> InverseOffer:
    url = data.get("url") or {}
    unavailability = unavailability_from_json(data["unavailability"])
    if unavailability is None:
        raise KeyError("unavailability")
    return InverseOffer(
        id=str(data["id"]["value"]),
        agent_id=value_of(data.get("agent_id")),
        hostname=(url.get("address") or {}).get("hostname") or None,
        unavailability=unavailability,
    )


def parse(event: Any) -> Event | None:
    """One decoded record -> its event; None for types in IGNORED_TYPES or unknown to us.

    Raises MalformedEvent when a known type lacks what it must carry.
    """
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise MalformedEvent("event without a type")
    kind = event["type"]
    try:
        if kind == "UPDATE":
            return TaskStatus.from_json(event["update"]["status"])
        if kind == "OFFERS":
            offers = event["offers"].get("offers", [])
            if not isinstance(offers, list):
                raise TypeError("offers")
            return _offers(offers)
        if kind == "HEARTBEAT":
            return Heartbeat()
        if kind == "RESCIND":
            return Rescind(str(event["rescind"]["offer_id"]["value"]))
        if kind == "INVERSE_OFFERS":
            items = event["inverse_offers"].get("inverse_offers", [])
            if not isinstance(items, list):
                raise TypeError("inverse_offers")
            return InverseOffers(tuple(_inverse_offer(i) for i in items))
        if kind == "RESCIND_INVERSE_OFFER":
            rescind = event["rescind_inverse_offer"]
            return RescindInverseOffer(str(rescind["inverse_offer_id"]["value"]))
        if kind == "SUBSCRIBED":
            sub = event["subscribed"]
            return Subscribed(
                framework_id=str(sub["framework_id"]["value"]),
                heartbeat_interval=float(
                    sub.get("heartbeat_interval_seconds") or DEFAULT_HEARTBEAT
                ),
                master_info=sub.get("master_info"),
                raw=sub,
            )
        if kind == "ERROR":
            return Error(str(event.get("error", {}).get("message", "")))
        if kind == "FAILURE":
            failure = event.get("failure") or {}
            status = failure.get("status")
            return Failure(
                agent_id=value_of(failure.get("agent_id")),
                executor_id=value_of(failure.get("executor_id")),
                status=None if status is None else int(status),
                raw=event,
            )
        if kind == "MESSAGE":
            message = event.get("message") or {}
            return Message(
                agent_id=value_of(message.get("agent_id")),
                executor_id=value_of(message.get("executor_id")),
                data=base64.b64decode(message.get("data") or ""),
                raw=event,
            )
    except MalformedEvent:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise MalformedEvent(f"malformed {kind} event (bad or missing {e})") from None
    return None


def known(kind: str) -> bool:
    """Is ``kind`` a type ``parse`` models or deliberately ignores?"""
    return kind in _MODELLED or kind in IGNORED_TYPES


_MODELLED = frozenset(
    {
        "UPDATE",
        "OFFERS",
        "HEARTBEAT",
        "RESCIND",
        "SUBSCRIBED",
        "ERROR",
        "FAILURE",
        "MESSAGE",
        "INVERSE_OFFERS",
        "RESCIND_INVERSE_OFFER",
    }
)
