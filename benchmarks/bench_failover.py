"""Master failover: how long until the framework is active again after the leader crashes.

    python benchmarks/bench_failover.py [--rounds 3] [--masters localmesos,real]
                                        [--zk-session 10] [--json FILE]

Two masters on one ZooKeeper path (a standalone ZooKeeper of its own), one agent process with a
running task, and mesosspawner's ``SchedulerClient`` subscribed through ``zk://`` with the hub's
settings. The leading master is SIGKILLed, and three moments are timed from the kill:

- known: ZooKeeper names the new leader (the dead one's session has expired);
- ready: the new leader accepts scheduler calls (a real one answers 503 "Master has not
  finished recovery" until it has read its replicated log);
- active: the client is subscribed to the new leader under the same framework id.

localmesos masters run with ``--zk-session-timeout``, real Mesos 1.11.0 masters (replicated log,
quorum 1; ``mesosspawner/testing/real_mesos.py``, skipped when not installed) with
``--zk_session_timeout``: both default to Mesos's 10 s, which bounds "known" from below. What the
client adds is active minus max(known, ready). Needs ZooKeeper
(``mesosspawner/testing/zookeeper.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from mesosspawner.localmesos.testing import command_task  # noqa: E402
from mesosspawner.mesos.client import EventHandler, SchedulerClient  # noqa: E402
from mesosspawner.mesos.detector import leader_child  # noqa: E402
from mesosspawner.testing import real_mesos, zookeeper  # noqa: E402

LISTENING = re.compile(r"localmesos master listening on (http://127\.0\.0\.1:\d+)")
AGENT = {"hostname": "failover-1", "resources": "cpus:2;mem:1024;disk:1000;ports:[41600-41699]"}


class Handler(EventHandler):
    def __init__(self) -> None:
        self.subscribed_at: list[tuple[float, int | None]] = []
        self.offers_seen: list[dict] = []
        self.running: set[str] = set()

    async def subscribed(self, event) -> None:
        port = ((event.master_info or {}).get("address") or {}).get("port")
        self.subscribed_at.append((time.monotonic(), port))

    async def offers(self, event) -> None:
        self.offers_seen.extend(event.offers)

    async def update(self, status) -> None:
        if status.state == "TASK_RUNNING":
            self.running.add(status.task_id)


async def until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.02)


def leader_port(zk, path: str) -> int | None:
    try:
        child = leader_child(zk.get_children(path))
        if child is None:
            return None
        data, _ = zk.get(f"{path}/{child}")
    except Exception:  # noqa: BLE001 - the dead leader's node may go between the calls
        return None
    return json.loads(data)["address"]["port"]


def accepts_calls(port: int) -> bool:
    """A call of an unknown framework: 503 while recovering, 307 from a standby, else 400."""
    body = json.dumps({"type": "REVIVE", "framework_id": {"value": "probe"}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/scheduler",
        data=body,
        headers={"Content-Type": "application/json"},
    )

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(request, timeout=2).read()
        return True
    except urllib.error.HTTPError as e:
        return e.code not in (503, 307)
    except OSError:
        return False


def watch(hosts: str, path: str, port: int, out: dict, stop: threading.Event) -> None:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=10)
    try:
        while not stop.is_set() and ("known" not in out or "ready" not in out):
            if "known" not in out and leader_port(zk, path) == port:
                out["known"] = time.monotonic()
            if "ready" not in out and accepts_calls(port):
                out["ready"] = time.monotonic()
            time.sleep(0.02)
    finally:
        zk.stop()
        zk.close()


class LocalMasters:
    """Two localmesos master processes and an agent process on one zk:// path."""

    def __init__(self, work: Path, zk_url: str, session: float) -> None:
        self.procs: list[subprocess.Popen] = []
        args = ["--no-agents", "--zk", zk_url, "--zk-session-timeout", str(session)]
        args += ["--allow-root-tasks"]  # its sleeper task runs as the benchmark's user (root)
        self.ports = [
            self._master(work / f"master-{i}.log", [*args, "--port", "0"]) for i in (0, 1)
        ]
        agent = ["agent", "--master", zk_url, "--hostname", AGENT["hostname"]]
        agent += ["--resources", AGENT["resources"], "--work-dir", str(work / "agent")]
        self._start(agent, work / "agent.log")

    def _start(self, args: list[str], log: Path) -> subprocess.Popen:
        with open(log, "wb") as f:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mesosspawner.localmesos", *args],
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def _master(self, log: Path, args: list[str]) -> int:
        self._start(args, log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = LISTENING.search(log.read_text(errors="replace"))
            if m:
                time.sleep(0.5)  # the first one to start leads: keep the order
                return int(m.group(1).rsplit(":", 1)[1])
            time.sleep(0.05)
        raise RuntimeError(f"localmesos did not start: {log.read_text()[-2000:]}")

    def kill(self, port: int) -> None:
        proc = self.procs[self.ports.index(port)]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


class RealMasters:
    def __init__(self, work: Path, zk_url: str, session: float) -> None:
        self.cluster = real_mesos.start_cluster(
            work,
            (AGENT,),
            zk=zk_url,
            masters=2,
            master_extra=(f"--zk_session_timeout={int(session)}secs",),
        )
        self.ports = [m.port for m in self.cluster.masters]

    def kill(self, port: int) -> None:
        next(m for m in self.cluster.masters if m.port == port).kill()

    def stop(self) -> None:
        self.cluster.stop()


async def one_round(kind: str, zk, session: float) -> dict:
    path = zookeeper.unique_path(f"bench-failover-{kind}")
    zk_url = zk.url(path)
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        masters = await asyncio.to_thread(
            LocalMasters if kind == "localmesos" else RealMasters, Path(tmp), zk_url, session
        )
        handler = Handler()
        info = {"user": "root", "name": "bench-failover", "failover_timeout": 600.0}
        info.update(checkpoint=True, roles=["*"], capabilities=[{"type": "MULTI_ROLE"}])
        client = SchedulerClient(zk_url, info, handler, request_timeout=10.0)
        try:
            await client.start()
            await until(lambda: handler.offers_seen, 60, "no offer")
            leader = handler.subscribed_at[-1][1]
            other = next(p for p in masters.ports if p != leader)
            offer = handler.offers_seen[-1]
            task = command_task(offer, "bench-task", "exec sleep 300", cpus=0.1, mem=32)
            await client.launch([offer["id"]["value"]], [task])
            await until(lambda: "bench-task" in handler.running, 60, "the task never ran")
            seen: dict = {}
            stop = threading.Event()
            killed = time.monotonic()
            await asyncio.to_thread(masters.kill, leader)
            watcher = threading.Thread(
                target=watch, args=(zk.hosts, path, other, seen, stop), daemon=True
            )
            watcher.start()
            try:
                await until(lambda: handler.subscribed_at[-1][1] == other, 120, "not re-subscribed")
                await asyncio.to_thread(watcher.join, 30)
            finally:
                stop.set()
            active = handler.subscribed_at[-1][0]
            return {
                "known": seen["known"] - killed,
                "ready": seen["ready"] - killed,
                "active": active - killed,
                "after_ready": active - max(seen["known"], seen["ready"]),
            }
        finally:
            await client.stop()
            await asyncio.to_thread(masters.stop)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--masters", default="localmesos,real")
    p.add_argument("--zk-session", type=float, default=10.0, help="masters' ZooKeeper session (s)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    logging.getLogger("mesosspawner").setLevel(logging.ERROR)  # the retries are expected here
    kinds = [k.strip() for k in args.masters.split(",") if k.strip()]
    if "real" in kinds and real_mesos.why_unavailable():
        print(f"real: skipped ({real_mesos.why_unavailable()})")
        kinds.remove("real")
    with tempfile.TemporaryDirectory(prefix="bench-zk-") as zk_dir:
        zk = zookeeper.start_zookeeper(Path(zk_dir))
        results: dict[str, list[dict]] = {k: [] for k in kinds}
        try:
            for _ in range(args.rounds):
                for kind in kinds:  # interleaved: machine load hits both alike
                    r = asyncio.run(one_round(kind, zk, args.zk_session))
                    results[kind].append(r)
                    print(
                        f"{kind:>10}: known {r['known']:5.2f} s  ready {r['ready']:5.2f} s"
                        f"  active {r['active']:5.2f} s  (active - ready {r['after_ready']:.2f} s)",
                        flush=True,
                    )
        finally:
            zk.stop()
    print(f"\nmedians over {args.rounds} rounds, ZooKeeper session {args.zk_session:g} s:")
    for kind, rs in results.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        print(
            f"{kind:>10}: kill -> known {med['known']:.2f} s, ready {med['ready']:.2f} s,"
            f" active {med['active']:.2f} s; the client's share {med['after_ready']:.2f} s"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
