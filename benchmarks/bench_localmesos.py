"""How fast is localmesos's master? Offer cycle and /master/state at 10, 100, 1,000 agents.

Run: ``python benchmarks/bench_localmesos.py [--tasks 10000] [--repeat 5]``

Each size runs a real master HTTP server with N agents registered directly in its state (no agent
processes) and 10,000 tasks spread over them (registered as launched; no real processes). A
framework subscribed over a real HTTP stream measures:

- offer cycle: DECLINE every outstanding offer (refuse_seconds 0) + REVIVE → until the OFFERS
  event with all N agents' offers has been read from the stream;
- /master/state: GET until the whole JSON body is received (and its size).

Median of ``--repeat`` runs. Prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tornado.httpclient import AsyncHTTPClient  # noqa: E402

from mesosspawner.localmesos.cluster import LocalCluster  # noqa: E402
from mesosspawner.localmesos.config import ClusterConfig  # noqa: E402
from mesosspawner.localmesos.testing import RawScheduler, framework_info  # noqa: E402
from mesosspawner.mesos.resources import parse_attributes, parse_resources  # noqa: E402


class NullLink:
    """An agent that accepts everything and does nothing (tasks stay as registered)."""

    def launch(self, framework: dict, task: dict) -> None:
        pass

    def kill(self, framework_id: str, task_id: str, grace: float) -> None:
        pass

    def acknowledge(self, framework_id: str, task_id: str, uuid: str) -> None:
        pass

    def shutdown_framework(self, framework_id: str) -> None:
        pass


async def bench(n_agents: int, n_tasks: int, repeat: int) -> dict:
    cluster = LocalCluster(
        ClusterConfig(agents=[]), port=0, heartbeat_interval=60, allocation_interval=3600
    )
    await cluster.start()
    master = cluster.master
    assert master is not None
    res = parse_resources("cpus:64;mem:262144;disk:1000000;ports:[31000-32000]")
    attrs = parse_attributes("rack:r1;zone:z1")
    for i in range(n_agents):
        master.register_agent(f"agent-{i:04d}", res, attrs, NullLink())
    s = RawScheduler(cluster.url)
    await s.subscribe(framework_info(name="bench", failover_timeout=3600))
    offers = await _all_offers(s, n_agents)
    fw = master.frameworks[s.framework_id]
    # Register the tasks as the master does on ACCEPT (resources accounted, statuses recorded).
    agents = list(master.agents.values())
    ids = [{"value": o["id"]["value"]} for o in offers]
    await s.call(
        {"type": "DECLINE", "decline": {"offer_ids": ids, "filters": {"refuse_seconds": 3600}}}
    )
    task_res = parse_resources("cpus:0.01;mem:8")
    for t in range(n_tasks):
        agent = agents[t % n_agents]
        info = {
            "name": f"task-{t}",
            "task_id": {"value": f"task-{t}"},
            "agent_id": {"value": agent.id},
            "command": {"value": "sleep 1000"},
            "labels": {"labels": [{"key": "user", "value": f"user{t}"}]},
        }
        master._launch(fw, agent, "*", info, task_res)
        status = {"task_id": {"value": f"task-{t}"}, "state": "TASK_RUNNING", "uuid": "x"}
        master.agent_status_update(agent.id, fw.id, status, "TASK_RUNNING")
    # Drain the UPDATE events the registration produced.
    while not s.events.empty():
        s.events.get_nowait()

    cycle: list[float] = []
    current = []
    await s.call({"type": "REVIVE"})
    current = await _all_offers(s, n_agents)
    for _ in range(repeat):
        ids = [{"value": o["id"]["value"]} for o in current]
        t0 = time.perf_counter()
        await s.call(
            {"type": "DECLINE", "decline": {"offer_ids": ids, "filters": {"refuse_seconds": 0}}}
        )
        await s.call({"type": "REVIVE"})
        current = await _all_offers(s, n_agents)
        cycle.append(time.perf_counter() - t0)

    client = AsyncHTTPClient()
    state_times: list[float] = []
    size = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        resp = await client.fetch(f"{cluster.url}/master/state", request_timeout=120)
        state_times.append(time.perf_counter() - t0)
        size = len(resp.body)
    await s.close()
    await cluster.stop()
    return {
        "agents": n_agents,
        "tasks": n_tasks,
        "cycle": statistics.median(cycle),
        "state": statistics.median(state_times),
        "state_mb": size / 1e6,
    }


async def _all_offers(s: RawScheduler, n: int) -> list[dict]:
    got: list[dict] = []
    while len(got) < n:
        got.extend(await s.offers(timeout=120))
    return got


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--agents", type=int, nargs="*", default=[10, 100, 1000])
    args = p.parse_args()
    rows = [await bench(n, args.tasks, args.repeat) for n in args.agents]
    print(
        f"{'agents':>7} {'tasks':>7} {'offer cycle':>12} {'/master/state':>14} {'state size':>11}"
    )
    for r in rows:
        print(
            f"{r['agents']:>7} {r['tasks']:>7} {r['cycle'] * 1000:>9.1f} ms "
            f"{r['state'] * 1000:>11.1f} ms {r['state_mb']:>8.2f} MB"
        )


if __name__ == "__main__":
    asyncio.run(main())
