"""Time-to-ready of N concurrent spawns: MesosSpawner on real Mesos and on localmesos vs
LocalProcessSpawner.

    python benchmarks/bench_spawn.py [--n 1,20,100] [--spawners local,mesos,real] [--json FILE]

Every spawner runs in the same invocation against a fresh real JupyterHub (with
configurable-http-proxy) per run, with the same `jupyterhub-singleuser` command, as the same
system users. `real` is MesosSpawner on a real Apache Mesos 1.11.0 master and agent
(mesosspawner/testing/real_mesos.py; skipped with the reason when Mesos is not installed).
Time-to-ready is the latency of the REST spawn request `POST /users/NAME/server` with
`slow_spawn_timeout` raised so the hub answers only when the server is up and routed.
Needs root (notebooks run as the benchmark's system users). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from mesosspawner.testing import real_mesos  # noqa: E402
from mesosspawner.testing.hub import Hub, kill_notebooks_of_hub  # noqa: E402
from mesosspawner.testing.localmesos_procs import LocalMesos  # noqa: E402
from mesosspawner.testing.notebook_env import ensure_notebook_env, ensure_user  # noqa: E402

SPAWNER_LABELS = {
    "local": "LocalProcessSpawner",
    "mesos": "MesosSpawner on localmesos",
    "real": "MesosSpawner on real Mesos 1.11",
}
USER_PREFIX = "msbench"

HUB_CONFIG = """
c.JupyterHub.log_level = "INFO"
# Let every spawn run at once, and let the spawn request return only when the server is ready.
c.JupyterHub.concurrent_spawn_limit = 0
c.JupyterHub.active_server_limit = 0
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": {timeout}}}
c.JupyterHub.last_activity_interval = 3600
c.Spawner.start_timeout = {timeout}
c.Spawner.http_timeout = {timeout}
"""

MESOS_CONFIG = """
c.JupyterHub.spawner_class = {spawner_class!r}
c.MesosSpawner.mesos_master = {master!r}
c.MesosSpawner.cpu_limit = {cpu}
c.MesosSpawner.mem_limit = {mem!r}
"""

LOCAL_CONFIG = """
c.JupyterHub.spawner_class = "localprocess"
"""


def agent_resources(n: int, cpu: float, mem_mb: int) -> str:
    """One plain agent big enough for n notebooks, on a port range unlikely to be in use."""
    base = random.randrange(40, 59) * 1000
    cpus = max(4.0, n * cpu * 1.5)
    mem = max(4096, int(n * mem_mb * 1.5))
    return f"cpus:{cpus:g};mem:{mem};disk:100000;ports:[{base}-{base + 999}]"


def cluster_toml(n: int, cpu: float, mem_mb: int) -> str:
    """localmesos's cluster file with the one agent of ``agent_resources``."""
    resources = agent_resources(n, cpu, mem_mb)
    return f'[[agent]]\nhostname = "bench-1"\nresources = "{resources}"\n'


@dataclass
class Run:
    spawner: str
    n: int
    times: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    wall: float = 0.0

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None

    @property
    def p95(self) -> float | None:
        return percentile(self.times, 95) if self.times else None


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100), equal to the value itself for one sample."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mesos_spawner_class() -> str:
    """'mesos' through the entry point when installed, else the class path from the work tree."""
    names = {ep.name for ep in metadata.entry_points(group="jupyterhub.spawners")}
    return "mesos" if "mesos" in names else "mesosspawner.MesosSpawner"


async def spawn_one(hub: Hub, user: str, run: Run, timeout: float) -> None:
    start = time.perf_counter()
    try:
        code, body = await hub.start_server_response(user, timeout=timeout)
        if code == 202:  # the hub gave up waiting inside the request: fall back to polling
            await hub.wait_server_ready(user, timeout=timeout)
        elif code != 201:
            run.failures.append(f"{user}: spawn answered {code}: {body}")
            return
        run.times.append(time.perf_counter() - start)
    except (AssertionError, ConnectionError, OSError) as e:
        run.failures.append(f"{user}: {str(e).splitlines()[0]}")


async def check_through_proxy(hub: Hub, user: str, run: Run) -> None:
    code, body = await hub.get_through_proxy(user)
    if code != 200:
        run.failures.append(f"{user}: ready but GET api/status through the proxy gave {code}")


async def bench(
    spawner: str, n: int, users: list[str], workdir: Path, args: argparse.Namespace
) -> Run:
    run = Run(spawner, n)
    nb_bin = ensure_notebook_env()
    config = HUB_CONFIG.format(timeout=args.timeout)
    mesos: LocalMesos | None = None
    real: real_mesos.RealCluster | None = None
    master = None
    if spawner == "mesos":
        mesos = LocalMesos(workdir / "localmesos", cluster_toml(n, args.cpu, args.mem_mb))
        mesos.start()
        await mesos.wait_ready()
        master = mesos.url
    elif spawner == "real":
        # The same one agent, as a real mesos-agent (Mesos containerizer, plain command tasks).
        spec = {"hostname": "bench-1", "resources": agent_resources(n, args.cpu, args.mem_mb)}
        real = await asyncio.to_thread(real_mesos.start_cluster, workdir / "real-mesos", (spec,))
        master = real.url
    if master is not None:
        config += MESOS_CONFIG.format(
            spawner_class=mesos_spawner_class(),
            master=master,
            cpu=args.cpu,
            mem=f"{args.mem_mb}M",
        )
    else:
        config += LOCAL_CONFIG
    hub = Hub(workdir / "hub", extra_config=config, notebook_bin=nb_bin, log_level="INFO")
    try:
        await hub.launch()
        for user in users[:n]:
            await hub.create_user(user)
        for user in users[:n]:
            await hub.user_token(user)
        t0 = time.perf_counter()
        await asyncio.gather(*(spawn_one(hub, u, run, args.timeout) for u in users[:n]))
        run.wall = time.perf_counter() - t0
        ready = [u for u in users[:n] if not any(f.startswith(f"{u}:") for f in run.failures)]
        await asyncio.gather(*(check_through_proxy(hub, u, run) for u in ready))
        if run.failures:
            print(f"  {spawner} N={n}: {len(run.failures)} failures, e.g. {run.failures[0]}")
            first = run.failures[0].split(":", 1)[0]
            lines = [line for line in hub.log_text().splitlines() if first in line]
            print(f"  --- hub log lines naming {first} ---\n" + "\n".join(lines[-15:]))
        await asyncio.gather(
            *(hub.stop_server(u, timeout=args.timeout) for u in ready), return_exceptions=True
        )
    finally:
        hub.cleanup()
        kill_notebooks_of_hub(hub.hub_port)
        if mesos is not None:
            await mesos.stop()
            mesos.cleanup()
        if real is not None:
            await asyncio.to_thread(real.stop)
    return run


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


COLUMNS = {"local": "local", "mesos": "localmesos", "real": "real mesos"}


def table(runs: list[Run], ns: list[int], spawners: list[str]) -> str:
    """Median and p95 per spawner, then each Mesos column's ratio to LocalProcessSpawner."""
    by = {(r.spawner, r.n): r for r in runs}
    ratios = [s for s in spawners if s != "local" and "local" in spawners]
    head = f"{'N':>4}"
    for s in spawners:
        head += f"  {COLUMNS[s] + ' ok':>14} {'median s':>8} {'p95 s':>7}"
    for s in ratios:
        head += f"  {COLUMNS[s] + '/local':>16} {'p95':>6}"
    lines = [
        "time-to-ready (s): "
        + " vs ".join(SPAWNER_LABELS[s] for s in spawners)
        + ("; ratio = mesos/local (median, p95)" if ratios else ""),
        head,
        "-" * len(head),
    ]
    for n in ns:
        line = f"{n:>4}"
        for s in spawners:
            r = by.get((s, n))
            ok = "-" if r is None else f"{len(r.times)}/{r.n}"
            line += f"  {ok:>14} {fmt(r and r.median):>8} {fmt(r and r.p95):>7}"
        lo = by.get(("local", n))
        for s in ratios:
            me = by.get((s, n))
            line += (
                f"  {ratio(me and me.median, lo and lo.median):>16}"
                f" {ratio(me and me.p95, lo and lo.p95):>6}"
            )
        lines.append(line)
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    ns = [int(x) for x in args.n.split(",")]
    spawners = args.spawners.split(",")
    unknown = set(spawners) - set(SPAWNER_LABELS)
    if unknown:
        print(f"unknown spawner(s) {sorted(unknown)}; choose from {sorted(SPAWNER_LABELS)}")
        return 2
    if "real" in spawners and real_mesos.why_unavailable():
        print(f"skipping the real-Mesos column: {real_mesos.why_unavailable()}", flush=True)
        spawners.remove("real")
    print("preparing notebook environment and users ...", flush=True)
    ensure_notebook_env()
    users = [f"{USER_PREFIX}{i:03d}" for i in range(1, max(ns) + 1)]
    for user in users:
        ensure_user(user)
    runs: list[Run] = []
    tmp = tempfile.mkdtemp(prefix="bench-spawn-", dir=args.workdir)
    for n in ns:
        for spawner in spawners:
            print(f"N={n} {SPAWNER_LABELS[spawner]} ...", flush=True)
            try:
                run = await bench(spawner, n, users, Path(tmp) / f"{spawner}-{n}", args)
            except (AssertionError, RuntimeError, TimeoutError) as e:  # a service did not come up
                print(f"  run failed: {e}", flush=True)
                run = Run(spawner, n, failures=[str(e).splitlines()[0]])
            print(
                f"  ok {len(run.times)}/{n}, median {fmt(run.median)} s, "
                f"p95 {fmt(run.p95)} s, all spawns done after {run.wall:.2f} s",
                flush=True,
            )
            runs.append(run)
    if any(r.failures for r in runs):
        print(f"\nlogs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(table(runs, ns, spawners))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {
                        **asdict(r),
                        "median": r.median,
                        "p95": r.p95,
                        "label": SPAWNER_LABELS[r.spawner],
                    }
                    for r in runs
                ],
                indent=2,
            )
        )
    return 1 if any(r.failures for r in runs) else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", default="1,20,100", help="comma list of concurrent spawn counts")
    p.add_argument(
        "--spawners",
        default="local,mesos,real",
        help="comma list of: local, mesos (localmesos), real (real Mesos 1.11)",
    )
    p.add_argument("--cpu", type=float, default=0.1, help="cpus per Mesos notebook")
    p.add_argument("--mem-mb", type=int, default=256, help="MB of memory per Mesos notebook")
    p.add_argument("--timeout", type=int, default=900, help="seconds one spawn may take")
    p.add_argument("--json", help="also write the raw timings to this file")
    p.add_argument("--workdir", help="parent directory for the hubs' temporary files")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench_spawn.py needs root: notebooks run as the benchmark's system users")
        return 2
    return asyncio.run(_cancel_on_sigterm(main_async(args)))


async def _cancel_on_sigterm(coro) -> int:
    """Turn SIGTERM into cancellation so every hub and Mesos cluster is cleaned up."""
    task = asyncio.ensure_future(coro)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        print("cancelled by SIGTERM", file=sys.stderr)
        return 143


if __name__ == "__main__":
    sys.exit(main())
