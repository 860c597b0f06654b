"""Spawn progress for people: what the framework tells a launch's observer, turned into
JupyterHub progress dicts, in order.

A spawn that waits for room says how long it may wait and what happens then. A spawn that
fails ends the feed without a message of its own: JupyterHub sends the failure (the spawner's
``SpawnException`` message) as the last event, so the person reads it once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from .availability import duration_words
from .placement import describe


class ProgressFeed:
    """One spawn's progress: the framework appends events; every ``events()`` reader (a browser
    tab, the REST progress API) replays them from the start and follows until the spawn ends."""

    # A real Mesos agent reports nothing while it pulls an image: the task just stays STAGING.
    # After this long without news the person is told what is most likely happening.
    STAGING_HINT_SECONDS = 10.0

    def __init__(self, image: str | None = None, give_up_after: float | None = None) -> None:
        self._events: list[dict[str, Any]] = []
        # Seconds a waiting spawn keeps waiting for room before it gives up (start_timeout).
        self.give_up_after = give_up_after
        self._changed = asyncio.Event()
        self._last_waiting = ""
        self._last_queue_line = ""
        self._done = False
        self.image = image
        self._staging_timer: asyncio.TimerHandle | None = None
        self.last_failure: str | None = None

    def _put(self, progress: int | None, message: str) -> None:
        if self._done:
            return
        event: dict[str, Any] = {"message": message}
        if progress is not None:
            event["progress"] = progress
        self._events.append(event)
        self._changed.set()

    # LaunchObserver: what the framework tells a waiting spawn.

    def queued(self, request) -> None:
        self._put(10, f"Request queued: waiting for an offer with {describe(request)}")

    def waiting(self, request, why: str | None = None) -> None:
        """Waiting for room; ``why``: what else it waits for (its role's quota)."""
        if why:
            message = f"Waiting for {why}"
        else:
            message = f"Waiting for {describe(request)} to become free on the cluster"
        if self.give_up_after:
            message += (
                f". It waits up to {duration_words(self.give_up_after)}; if nothing frees up"
                " by then, the spawn stops and you can try again or pick another profile."
            )
        if message != self._last_waiting:
            self._last_waiting = message
            self._put(20, message)

    def in_queue(self, line: str) -> None:
        """The GPU queue's line for this spawn ("2nd in the GPU queue, about 12 min"), said
        again whenever it changes."""
        if line != self._last_queue_line:
            self._last_queue_line = line
            self._put(15, line[:1].upper() + line[1:])

    def accepted(self, placement, task_id: str) -> None:
        self._put(40, f"Offer accepted on agent {placement.hostname}: launching task {task_id}")
        if self.image:
            self._staging_timer = asyncio.get_running_loop().call_later(
                self.STAGING_HINT_SECONDS, self._staging_hint, placement.hostname
            )

    def retry(self, why: str) -> None:
        self._cancel_hint()
        self._put(30, f"Launch retried: {why}")

    def starting(self, record) -> None:
        if record.state != "TASK_STAGING":
            self._cancel_hint()
        state = record.state.removeprefix("TASK_").lower()
        detail = f": {record.message}" if record.message else ""
        self._put(60, f"Task {state} on {record.hostname or record.agent_id}{detail}")

    def _staging_hint(self, hostname: str) -> None:
        self._staging_timer = None
        self._put(
            50,
            f"Task staging on {hostname}: the agent is most likely pulling the image "
            f"{self.image} (the first start on an agent can take minutes)",
        )

    def _cancel_hint(self) -> None:
        if self._staging_timer is not None:
            self._staging_timer.cancel()
            self._staging_timer = None

    def running(self, record) -> None:
        """The task runs; the spawner ends the feed once the server answers (``finish``) or
        its task stops first (``fail``)."""
        self._cancel_hint()
        self._put(90, f"Task running on {record.hostname}; waiting for the server to answer")

    def note(self, message: str) -> None:
        """Something the person should know while waiting (e.g. the Spark role's capacity)."""
        self._put(None, message)

    def fail(self, message: str) -> None:
        """The spawn failed with ``message``: end the feed. JupyterHub itself sends the failure
        to the person (from the exception the spawner raises), so it is not repeated here."""
        self.last_failure = message
        self.finish()

    @property
    def finished(self) -> bool:
        return self._done

    def finish(self) -> None:
        self._cancel_hint()
        self._done = True
        self._changed.set()

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        sent = 0
        while True:
            while sent < len(self._events):
                yield self._events[sent]
                sent += 1
            if self._done:
                return
            self._changed.clear()
            await self._changed.wait()
