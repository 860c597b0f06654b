"""Issue 3's timed requirement: a burst of events never stalls the event loop above 100 ms."""

from __future__ import annotations

import asyncio

from tests.client.conftest import Recorder
from tests.client.fake_master import burst_master_process, stats

OFFERS = 1_000
UPDATES = 10_000
MAX_STALL = 0.100


class Counter(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.offers_seen = 0
        self.updates_seen = 0

    async def offers(self, offers):
        self.offers_seen += len(offers)

    async def update(self, status):
        self.updates_seen += 1


async def test_a_burst_of_offers_and_updates_never_stalls_the_loop(make_client):
    loop = asyncio.get_running_loop()
    longest = 0.0
    done = False

    async def ticker() -> None:
        nonlocal longest
        while not done:
            before = loop.time()
            await asyncio.sleep(0.001)
            longest = max(longest, loop.time() - before - 0.001)

    with burst_master_process(OFFERS, UPDATES) as url:
        handler = Counter()
        client = make_client(url, handler, request_timeout=30)
        tick = asyncio.create_task(ticker())
        await client.start()
        try:
            async with asyncio.timeout(120):
                while handler.updates_seen < UPDATES:
                    await asyncio.sleep(0.05)
                while True:
                    acks = (await loop.run_in_executor(None, stats, url))["calls"]
                    if acks.get("ACKNOWLEDGE", 0) >= UPDATES:
                        break
                    await asyncio.sleep(0.1)
        finally:
            done = True
            await tick
        await client.stop()

    assert handler.offers_seen == OFFERS
    assert acks == {"ACKNOWLEDGE": UPDATES}  # every update carried a uuid; nothing else sent
    print(f"longest event-loop stall: {longest * 1000:.1f} ms")
    assert longest < MAX_STALL, f"the event loop stalled for {longest * 1000:.0f} ms"
