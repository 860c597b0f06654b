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
    feed.accepted(PLACED, "t1")
    text = await messages_after(feed, 0.3)
    assert any("pulling the image registry.lab/nb@sha256:abc" in m for m in text), text


async def test_no_pull_hint_once_the_task_starts_or_without_an_image(monkeypatch):
    monkeypatch.setattr(ProgressFeed, "STAGING_HINT_SECONDS", 0.1)
    started = ProgressFeed(image="registry.lab/nb:1")
    started.accepted(PLACED, "t1")
    record = SimpleNamespace(state="TASK_STARTING", message="", hostname="gpu-1", agent_id="a1")
    started.starting(record)
    plain = ProgressFeed()
    plain.accepted(PLACED, "t2")
    for feed in (started, plain):
        assert not any("pulling" in m for m in await messages_after(feed, 0.3))


async def test_the_feed_tells_a_launch_story_in_order():
    from mesosspawner.placement import Request

    feed = ProgressFeed()
    request = Request("k", cpus=2, mem=1024)
    feed.queued(request)
    feed.waiting(request)
    feed.waiting(request)  # said once
    feed.accepted(PLACED, "t1")
    feed.retry("the offer was no longer valid")
    text = await messages_after(feed, 0)
    assert text == [
        "Request queued: waiting for an offer with 2 cpus, 1024 MB memory",
        "Waiting for 2 cpus, 1024 MB memory to become free on the cluster",
        "Offer accepted on agent gpu-1: launching task t1",
        "Launch retried: the offer was no longer valid",
    ]
