"""Spawn progress for people: framework events turned into JupyterHub progress dicts, in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

_DONE = object()


class ProgressFeed:
    """One spawn's progress: the framework pushes events, ``progress()`` drains them."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue = asyncio.Queue()
        self._last_waiting = ""
        self._done = False

    def _put(self, progress: int | None, message: str) -> None:
        if self._done:
            return
        event: dict[str, Any] = {"message": message}
        if progress is not None:
            event["progress"] = progress
        self._queue.put_nowait(event)

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

    def finish(self) -> None:
        if not self._done:
            self._done = True
            self._queue.put_nowait(_DONE)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            event = await self._queue.get()
            if event is _DONE:
                return
            yield event
