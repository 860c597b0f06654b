"""ProgressFeed: what a person reads while a task stays STAGING on a real agent."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from mesosspawner.placement import Placement
from mesosspawner.progress import ProgressFeed

PLACED = Placement("k", "o1", "a1", "gpu-1", "127.0.0.1", "*", (), ())


async def messages_after(feed: ProgressFeed, seconds: float) -> list[str]:
    await asyncio.sleep(seconds)
    feed.finish()
    return [e["message"] async for e in feed.events()]


async def test_silent_staging_with_an_image_says_the_agent_is_pulling_it(monkeypatch):
    monkeypatch.setattr(ProgressFeed, "STAGING_HINT_SECONDS", 0.1)
    feed = ProgressFeed(image="registry.lab/nb@sha256:abc")
    feed.on_framework_event("accepted", {"placement": PLACED, "task_id": "t1"}, None)
    text = await messages_after(feed, 0.3)
    assert any("pulling the image registry.lab/nb@sha256:abc" in m for m in text), text


async def test_no_pull_hint_once_the_task_starts_or_without_an_image(monkeypatch):
    monkeypatch.setattr(ProgressFeed, "STAGING_HINT_SECONDS", 0.1)
    started = ProgressFeed(image="registry.lab/nb:1")
    started.on_framework_event("accepted", {"placement": PLACED, "task_id": "t1"}, None)
    record = SimpleNamespace(state="TASK_STARTING", message="", hostname="gpu-1", agent_id="a1")
    started.on_framework_event("starting", {"record": record}, None)
    plain = ProgressFeed()
    plain.on_framework_event("accepted", {"placement": PLACED, "task_id": "t2"}, None)
    for feed in (started, plain):
        assert not any("pulling" in m for m in await messages_after(feed, 0.3))
