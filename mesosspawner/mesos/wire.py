"""Small pieces of the Mesos v1 JSON wire format: ids, durations and numbers in messages.

Pure: plain data in, plain data out.
"""

from __future__ import annotations

from typing import Any

__all__ = ["duration", "id_json", "number", "seconds", "value_of"]


def id_json(value: str | dict) -> dict:
    """``"abc"`` -> ``{"value": "abc"}``; an id already in JSON form is kept as it is."""
    return value if isinstance(value, dict) else {"value": value}


def value_of(id_: Any) -> str | None:
    """``{"value": "abc"}`` (or ``"abc"``) -> ``"abc"``; None when absent or empty."""
    if isinstance(id_, dict):
        value = id_.get("value")
        return str(value) if value else None
    return str(id_) if id_ else None


def duration(secs: float) -> dict:
    """Seconds -> a ``DurationInfo`` (``{"nanoseconds": int}``)."""
    return {"nanoseconds": int(round(secs * 1e9))}


def seconds(info: dict) -> float:
    """A ``DurationInfo`` -> seconds."""
    return int(info["nanoseconds"]) / 1e9


def number(x: float) -> str:
    """A quantity for a message: ``2.0`` -> ``"2"``, ``0.5`` -> ``"0.5"``."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
