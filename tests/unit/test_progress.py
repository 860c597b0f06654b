"""ProgressFeed: what a person reads while a task stays STAGING on a real agent."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from mesosspawner.placement import Placement, Request
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

    feed = ProgressFeed()
    request = Request("k", cpus=2, mem=1024)
    feed.queued(request)
    feed.waiting(request)
    feed.waiting(request)  # said once
    feed.accepted(PLACED, "t1")
    feed.retry("the offer was no longer valid")
    text = await messages_after(feed, 0)
    assert text == [
        "Request queued: waiting for an offer with 2 cpus, 1024 MiB memory",
        "Waiting for 2 cpus, 1024 MiB memory to become free on the cluster",
        "Offer accepted on agent gpu-1: launching task t1",
        "Launch retried: the offer was no longer valid",
    ]


async def test_a_waiting_spawn_says_how_long_it_may_wait_and_what_then():

    feed = ProgressFeed(give_up_after=298)
    feed.waiting(Request("k", cpus=1, mem=256, gpus=1))
    (text,) = await messages_after(feed, 0)
    assert text.startswith("Waiting for 1 cpu, 256 MiB memory, 1 GPU to become free")
    assert "It waits up to 5 minutes" in text
    assert "the spawn stops and you can try again" in text


async def test_a_failed_spawn_is_told_once_by_jupyterhub_not_by_the_feed_too():
    """JupyterHub sends the failure as its last progress event; a feed message would be the
    same failure a second time ("Spawn failed: ..." twice on the page)."""
    feed = ProgressFeed()
    feed.queued(Request("k", cpus=1, mem=1))
    feed.fail("Gave up after 5 minutes: no agent has 1 GPU free")
    text = await messages_after(feed, 0)
    assert len(text) == 1 and not any("Gave up" in m or "failed" in m for m in text), text
    assert feed.finished


def test_the_person_reads_the_plain_message_not_the_exception_class():
    from jupyterhub.utils import format_exception

    from mesosspawner.spawner import _spawn_error

    error = _spawn_error("Gave up after 5 minutes: no agent has 1 GPU free.", reason="timeout")
    message, _html = format_exception(error)
    assert message == "Gave up after 5 minutes: no agent has 1 GPU free."
    assert "SpawnException" not in message and "500" not in message
