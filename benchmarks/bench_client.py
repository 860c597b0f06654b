"""Scheduler client throughput: mesosspawner's asyncio client against pymesos, same events.

    python benchmarks/bench_client.py [--offers 1000] [--updates 10000] [--rounds 3] [--decline]

A fake master (tests/client/fake_master.py, its own process) streams the same burst to every
subscriber: OFFERS events of one offer each, then TASK_RUNNING updates that all carry a uuid and
so must be acknowledged. Each client runs in a fresh process of its own; the clock starts at the
SUBSCRIBED event and stops when the handler has seen every event and the master has counted
every acknowledgement. Reported: events per second, CPU seconds (user + system, all threads of
the client process) per 10,000 events, and the ratio. ``--decline`` also declines every offer
from the handler (an awaited call in ours, a blocking call in pymesos).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FRAMEWORK = {"user": "nobody", "name": "bench", "roles": ["*"], "failover_timeout": 3600.0}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _acks(url: str) -> int:
    from tests.client.fake_master import stats

    return stats(url)["calls"].get("ACKNOWLEDGE", 0)


# ---------------------------------------------------------------- the two clients (child side)


def run_ours(url: str, offers: int, updates: int, decline: bool) -> dict:
    import asyncio

    from mesosspawner.mesos.client import EventHandler, SchedulerClient

    class Handler(EventHandler):
        def __init__(self) -> None:
            self.start: tuple[float, float] | None = None
            self.n_offers = self.n_updates = 0
            self.done = asyncio.Event()

        async def subscribed(self, event):
            self.start = (time.perf_counter(), _cpu())

        async def offers(self, offers):
            self.n_offers += 1
            if decline:
                await client.decline([o["id"]["value"] for o in offers])
            self._check()

        async def update(self, status):
            self.n_updates += 1
            self._check()

        def _check(self) -> None:
            if self.n_offers == offers and self.n_updates == updates:
                self.done.set()

    async def main() -> dict:
        nonlocal client
        handler = Handler()
        client = SchedulerClient(url, FRAMEWORK, handler, request_timeout=60)
        await client.start()
        await asyncio.wait_for(handler.done.wait(), 300)
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, _acks, url) < updates:
            await asyncio.sleep(0.02)
        end = (time.perf_counter(), _cpu())
        await client.stop()
        return _result(handler.start, end, offers + updates)

    client = None
    return asyncio.run(main())


def run_pymesos(url: str, offers: int, updates: int, decline: bool) -> dict:
    from pymesos import MesosSchedulerDriver, Scheduler

    class Handler(Scheduler):
        def __init__(self) -> None:
            self.start: tuple[float, float] | None = None
            self.n_offers = self.n_updates = 0
            self.done = threading.Event()

        def registered(self, driver, framework_id, master_info):
            self.start = (time.perf_counter(), _cpu())

        def resourceOffers(self, driver, offers_):  # noqa: N802 - pymesos's name
            self.n_offers += 1
            if decline:
                driver.declineOffer([o["id"] for o in offers_])
            self._check()

        def statusUpdate(self, driver, status):  # noqa: N802
            self.n_updates += 1
            self._check()

        def _check(self) -> None:
            if self.n_offers == offers and self.n_updates == updates:
                self.done.set()

    handler = Handler()
    address = url.split("//", 1)[1]
    driver = MesosSchedulerDriver(
        handler, dict(FRAMEWORK), address, implicit_acknowledgements=True, failover=True
    )
    driver.start()
    try:
        if not handler.done.wait(300):
            seen = f"{handler.n_offers} offers, {handler.n_updates} updates"
            raise RuntimeError(f"pymesos saw only {seen}")
        while _acks(url) < updates:
            time.sleep(0.02)
        end = (time.perf_counter(), _cpu())
    finally:
        driver.stop(failover=True)
        driver.join()
    return _result(handler.start, end, offers + updates)


def _result(start: tuple[float, float] | None, end: tuple[float, float], events: int) -> dict:
    assert start is not None, "never subscribed"
    seconds, cpu = end[0] - start[0], end[1] - start[1]
    return {
        "events": events,
        "seconds": seconds,
        "events_per_second": events / seconds,
        "cpu_per_10k": cpu / events * 10_000,
    }


# ---------------------------------------------------------------- orchestration (parent side)


def measure(client: str, offers: int, updates: int, decline: bool) -> dict:
    from tests.client.fake_master import burst_master_process

    with burst_master_process(offers, updates) as url:
        args = [sys.executable, __file__, "--child", client, "--url", url]
        args += ["--offers", str(offers), "--updates", str(updates)]
        if decline:
            args.append("--decline")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
        if out.returncode != 0:
            raise RuntimeError(f"{client} run failed:\n{out.stdout}\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--offers", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decline", action="store_true")
    parser.add_argument("--child", choices=["ours", "pymesos"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        run = run_ours if args.child == "ours" else run_pymesos
        print(json.dumps(run(args.url, args.offers, args.updates, args.decline)))
        return 0

    results: dict[str, list[dict]] = {"ours": [], "pymesos": []}
    for _ in range(args.rounds):
        for client in results:  # interleaved, so machine load hits both alike
            results[client].append(measure(client, args.offers, args.updates, args.decline))

    def median(client: str, key: str) -> float:
        return statistics.median(r[key] for r in results[client])

    events = args.offers + args.updates
    print(
        f"{args.offers} OFFERS + {args.updates} UPDATE events (all acknowledged)"
        f"{', every offer declined' if args.decline else ''}; median of {args.rounds} rounds"
    )
    print(f"{'client':<28}{'events/s':>12}{'CPU s / 10k events':>22}{'wall s':>10}")
    names = {"ours": "mesosspawner.mesos.client", "pymesos": "pymesos 0.3.15"}
    for client, name in names.items():
        rate = median(client, "events_per_second")
        cpu = median(client, "cpu_per_10k")
        print(f"{name:<28}{rate:>12.0f}{cpu:>22.3f}{events / rate:>10.2f}")
    ratio = median("ours", "events_per_second") / median("pymesos", "events_per_second")
    cpu_ratio = median("pymesos", "cpu_per_10k") / median("ours", "cpu_per_10k")
    print(f"throughput ratio (ours / pymesos): {ratio:.2f}x; CPU per event ratio: {cpu_ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
