"""The hub's part in Mesos maintenance: how it answers the master's inverse offers, and the
words logs and people read about machines going down. Pure.

An operator schedules maintenance (``POST /master/maintenance/schedule``): offers from the
machine then carry an ``unavailability`` (placement starts no notebook there within the
horizon), and frameworks holding resources there get inverse offers asking for them back. A
notebook cannot move, so the hub says yes only when none of its notebooks runs there; an
operator who cannot wait drains the agent (``DRAIN_AGENT``), which stops them, and each person
is told why (``tasks.TaskRecord.describe``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from .availability import duration_words
from .mesos.events import InverseOffer, Unavailability
from .tasks import TaskRecord

__all__ = ["answer", "going_down_words", "window_words"]


def window_words(unavailability: Unavailability) -> str:
    """ "from 2026-12-04 18:00 UTC for 60 minutes" (or ", for good")."""
    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(unavailability.start))
    if unavailability.duration is None:
        return f"from {start}, for good"
    return f"from {start} for {duration_words(unavailability.duration)}"


def answer(offer: InverseOffer, tasks: Iterable[TaskRecord]) -> tuple[bool, str]:
    """(accept, why) for an inverse offer, given this hub's tasks."""
    where = offer.hostname or offer.agent_id or "every agent"
    when = window_words(offer.unavailability)
    ours = sorted(
        t.task_id
        for t in tasks
        if t.active and (offer.agent_id is None or t.agent_id == offer.agent_id)
    )
    if not ours:
        return True, f"{where} goes down for maintenance {when}; no notebook of this hub runs there"
    return False, (
        f"{where} goes down for maintenance {when}, but {len(ours)} notebook(s) of this hub run"
        f" there and cannot move ({', '.join(ours)}); drain the agent (DRAIN_AGENT) to stop them"
    )


def going_down_words(down: Mapping[str, tuple[str, Unavailability]]) -> str:
    """Why some agents take no new notebook: "big-1 from 2026-12-04 18:00 UTC for 60 minutes"."""
    return ", ".join(sorted(f"{host} {window_words(u)}" for host, u in down.values()))
