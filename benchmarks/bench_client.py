"""Scheduler client throughput: mesosspawner's asyncio client against pymesos, same events.

    python benchmarks/bench_client.py [--rounds 3] [--workload burst|reconcile|both]
                                      [--offers 1000] [--updates 10000] [--decline]

Two workloads, each run through both clients with identical event streams:

- ``burst``: a fake master (mesosspawner/testing/fake_master.py, a process of its own, fast
  enough never to be the bottleneck) streams OFFERS events of one offer each, then TASK_RUNNING
  updates that all carry a uuid and so must be acknowledged. The run ends when the handler has
  seen every event and the master has counted every acknowledgement. ``--decline`` also
  declines every offer from the handler (awaited in ours, a blocking call in pymesos).
- ``reconcile``: a real localmesos (the CLI, no agents) answers an explicit RECONCILE of
  ``--updates`` unknown task ids with as many master-generated updates (never acknowledged).
  The run ends when the handler has seen them all.

Each client runs in a fresh process; the clock starts at the SUBSCRIBED event. Reported per
workload: events per second, CPU seconds (user + system, all threads of the client process) per
10,000 events, and the ratios (median of ``--rounds``, runs interleaved so machine load hits both
clients alike).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FRAMEWORK = {"user": "nobody", "name": "bench", "failover_timeout": 3600.0}
NAMES = {"ours": "mesosspawner.mesos.client", "pymesos": "pymesos 0.3.15"}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _acks(url: str) -> int:
    from mesosspawner.testing.fake_master import stats

    return stats(url)["calls"].get("ACKNOWLEDGE", 0)


def _ghosts(n: int) -> list[str]:
    return [f"ghost-{i}" for i in range(n)]


# ---------------------------------------------------------------- the two clients (child side)


def run_ours(url: str, workload: str, offers: int, updates: int, decline: bool) -> dict:
    import asyncio

    from mesosspawner.mesos.client import EventHandler, SchedulerClient

    want_offers = offers if workload == "burst" else 0

    class Handler(EventHandler):
        def __init__(self) -> None:
            self.start: tuple[float, float] | None = None
            self.n_offers = self.n_updates = 0
            self.ready = asyncio.Event()
            self.done = asyncio.Event()

        async def subscribed(self, event):
            self.start = (time.perf_counter(), _cpu())
            self.ready.set()

        async def offers(self, event):
            self.n_offers += 1
            if decline:
                await client.decline([o["id"]["value"] for o in event.offers])
            self._check()

        async def update(self, status):
            if workload == "burst" or status.task_id.startswith("ghost-"):
                self.n_updates += 1
                self._check()

        def _check(self) -> None:
            if self.n_offers >= want_offers and self.n_updates == updates:
                self.done.set()

    async def main() -> dict:
        nonlocal client
        handler = Handler()
        client = SchedulerClient(url, FRAMEWORK, handler, request_timeout=60)
        await client.start()
        await asyncio.wait_for(handler.ready.wait(), 60)
        if workload == "reconcile":
            await client.reconcile([(task_id, None) for task_id in _ghosts(updates)])
        await asyncio.wait_for(handler.done.wait(), 300)
        if workload == "burst":
            loop = asyncio.get_running_loop()
            while await loop.run_in_executor(None, _acks, url) < updates:
                await asyncio.sleep(0.02)
        end = (time.perf_counter(), _cpu())
        await client.stop()
        return _result(handler.start, end, want_offers + updates)

    client = None
    return asyncio.run(main())


def run_pymesos(url: str, workload: str, offers: int, updates: int, decline: bool) -> dict:
    from pymesos import MesosSchedulerDriver, Scheduler

    want_offers = offers if workload == "burst" else 0

    class Handler(Scheduler):
        def __init__(self) -> None:
            self.start: tuple[float, float] | None = None
            self.n_offers = self.n_updates = 0
            self.ready = threading.Event()
            self.done = threading.Event()

        def registered(self, driver, framework_id, master_info):
            self.start = (time.perf_counter(), _cpu())
            self.ready.set()

        def resourceOffers(self, driver, offers_):  # noqa: N802 - pymesos's name
            self.n_offers += 1
            if decline:
                driver.declineOffer([o["id"] for o in offers_])
            self._check()

        def statusUpdate(self, driver, status):  # noqa: N802
            if workload == "burst" or status["task_id"]["value"].startswith("ghost-"):
                self.n_updates += 1
                self._check()

        def _check(self) -> None:
            if self.n_offers >= want_offers and self.n_updates == updates:
                self.done.set()

    handler = Handler()
    address = url.split("//", 1)[1]
    driver = MesosSchedulerDriver(
        handler, dict(FRAMEWORK), address, implicit_acknowledgements=True, failover=True
    )
    driver.start()
    try:
        if not handler.ready.wait(60):
            raise RuntimeError("pymesos never subscribed")
        if workload == "reconcile":
            driver.reconcileTasks([{"task_id": {"value": t}} for t in _ghosts(updates)])
        if not handler.done.wait(300):
            seen = f"{handler.n_offers} offers, {handler.n_updates} updates"
            raise RuntimeError(f"pymesos saw only {seen}")
        if workload == "burst":
            while _acks(url) < updates:
                time.sleep(0.02)
        end = (time.perf_counter(), _cpu())
    finally:
        driver.stop(failover=True)
        driver.join()
    return _result(handler.start, end, want_offers + updates)


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


@contextmanager
def localmesos_process() -> Iterator[str]:
    """``mesosspawner-localmesos --port 0 --no-agents`` (the CLI, as users start it)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesosspawner.localmesos", "--port", "0", "--no-agents"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"listening on (http://\S+)", line)
        if not match:
            raise RuntimeError(f"localmesos did not start: {line!r}")
        yield match.group(1)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def measure(client: str, workload: str, args: argparse.Namespace) -> dict:
    from mesosspawner.testing.fake_master import burst_master_process

    master = (
        burst_master_process(args.offers, args.updates)
        if workload == "burst"
        else localmesos_process()
    )
    with master as url:
        command = [sys.executable, __file__, "--child", client, "--url", url]
        command += ["--workload", workload]
        command += ["--offers", str(args.offers), "--updates", str(args.updates)]
        if args.decline:
            command.append("--decline")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if out.returncode != 0:
            raise RuntimeError(f"{client} run failed:\n{out.stdout}\n{out.stderr[-3000:]}")
        return json.loads(out.stdout.strip().splitlines()[-1])


def report(workload: str, results: dict[str, list[dict]], args: argparse.Namespace) -> None:
    def median(client: str, key: str) -> float:
        return statistics.median(r[key] for r in results[client])

    if workload == "burst":
        title = f"burst: {args.offers} OFFERS + {args.updates} UPDATEs, all acknowledged"
        if args.decline:
            title += ", every offer declined"
    else:
        title = f"reconcile (localmesos): {args.updates} master-generated UPDATEs"
    print(f"{title}; median of {args.rounds} rounds")
    print(f"  {'client':<28}{'events/s':>12}{'CPU s / 10k events':>22}{'wall s':>10}")
    for client, name in NAMES.items():
        rate, cpu = median(client, "events_per_second"), median(client, "cpu_per_10k")
        events = results[client][0]["events"]
        print(f"  {name:<28}{rate:>12.0f}{cpu:>22.3f}{events / rate:>10.2f}")
    ratio = median("ours", "events_per_second") / median("pymesos", "events_per_second")
    cpu_ratio = median("pymesos", "cpu_per_10k") / median("ours", "cpu_per_10k")
    print(f"  throughput ours/pymesos: {ratio:.2f}x; CPU per event pymesos/ours: {cpu_ratio:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", choices=["burst", "reconcile", "both"], default="both")
    parser.add_argument("--offers", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decline", action="store_true")
    parser.add_argument("--child", choices=list(NAMES), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        run = run_ours if args.child == "ours" else run_pymesos
        result = run(args.url, args.workload, args.offers, args.updates, args.decline)
        print(json.dumps(result))
        return 0

    workloads = ["burst", "reconcile"] if args.workload == "both" else [args.workload]
    for workload in workloads:
        results: dict[str, list[dict]] = {client: [] for client in NAMES}
        for _ in range(args.rounds):
            for client in NAMES:  # interleaved, so machine load hits both alike
                results[client].append(measure(client, workload, args))
        report(workload, results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
