"""Mesos v1 scheduler events as typed, frozen values.

``parse`` turns one decoded RecordIO record (a JSON object) into one of the classes below, so
the client only moves events and the framework reads fields instead of digging through dicts.
Pure: plain data in, plain data out.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from .wire import value_of

__all__ = [
    "Error",
    "Event",
    "Failure",
    "Heartbeat",
    "IGNORED_TYPES",
    "MalformedEvent",
    "Message",
    "Offers",
    "Rescind",
    "Subscribed",
    "TaskStatus",
    "parse",
]

# Event types Mesos sends that nothing here needs (operations, inverse offers).
IGNORED_TYPES = frozenset({"INVERSE_OFFERS", "RESCIND_INVERSE_OFFER", "UPDATE_OPERATION_STATUS"})
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
class Offers:
    offers: tuple[dict, ...]  # v1 Offer objects, as placement.offer_from_json reads them


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


Event = Subscribed | Offers | TaskStatus | Rescind | Error | Failure | Heartbeat | Message


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
            return Offers(tuple(offers))
        if kind == "HEARTBEAT":
            return Heartbeat()
        if kind == "RESCIND":
            return Rescind(str(event["rescind"]["offer_id"]["value"]))
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
    {"UPDATE", "OFFERS", "HEARTBEAT", "RESCIND", "SUBSCRIBED", "ERROR", "FAILURE", "MESSAGE"}
)
