"""Spawn progress for people: framework events turned into JupyterHub progress dicts, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any


class ProgressFeed:
    """One spawn's progress: the framework appends events; every ``events()`` reader (a browser
    tab, the REST progress API) replays them from the start and follows until the spawn ends."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._last_waiting = ""
        self._done = False

    def _put(self, progress: int | None, message: str) -> None:
        if self._done:
            return
        event: dict[str, Any] = {"message": message}
        if progress is not None:
            event["progress"] = progress
        self._events.append(event)
        self._changed.set()

    def on_framework_event(self, kind: str, data: dict[str, Any], framework) -> None:
        if kind == "queued":
            what = framework.describe_request(data["request"])
            self._put(10, f"Request queued: waiting for an offer with {what}")
        elif kind == "waiting":
            what = framework.describe_request(data["request"])
            message = f"Waiting for {what} to become free on the cluster"
            if message != self._last_waiting:
                self._last_waiting = message
                self._put(20, message)
        elif kind == "accepted":
            p = data["placement"]
            self._put(40, f"Offer accepted on agent {p.hostname}: launching task {data['task_id']}")
        elif kind == "retry":
            self._put(30, f"Launch retried: {data['why']}")
        elif kind == "starting":
            record = data["record"]
            state = record.state.removeprefix("TASK_").lower()
            detail = f": {record.message}" if record.message else ""
            self._put(60, f"Task {state} on {record.hostname or record.agent_id}{detail}")

    def running(self, record) -> None:
        self._put(90, f"Task running on {record.hostname}; waiting for the server to answer")
        self.finish()

    def fail(self, message: str) -> None:
        self._put(100, f"Spawn failed: {message}")
        self.finish()

    @property
    def finished(self) -> bool:
        return self._done

    def finish(self) -> None:
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
