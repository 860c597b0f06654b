"""localmesos as processes: the CLI, separate agent processes, ZooKeeper election and failover."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from mesosspawner.localmesos.testing import (
    RawScheduler,
    command_task,
    framework_info,
    post,
    start_cli,
    stop_cli,
)


def _state(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/master/state", timeout=10) as r:
        return json.loads(r.read())


def test_cli_default_cluster_lists_three_agents(cli_master):
    assert cli_master.startswith("http://127.0.0.1:")
    state = _state(cli_master)
    slaves = {a["hostname"]: a for a in state["slaves"]}
    assert len(slaves) == 3
    gpu = [a for a in slaves.values() if a["resources"]["gpus"] == 2]
    assert len(gpu) == 1
    spark = [a for a in slaves.values() if "spark" in a["reserved_resources"]]
    assert len(spark) == 1
    assert all(a["attributes"] and a["resources"]["cpus"] > 0 for a in slaves.values())


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[[agent]]\nhostname = "a"\nresources = "cpus:four"\n', "cpus:four"),
        ('[[agent]]\nhostname = "a"\nresources = "cpus:1"\nattributes = "rack"\n', "rack"),
        ("[[agent]\n", "TOML"),
        (
            '[[agent]]\nhostname="a"\nresources="ports:[1-10]"\n'
            '[[agent]]\nhostname="b"\nresources="ports:[10-20]"\n',
            "[10-10]",
        ),
    ],
)
def test_malformed_cluster_file_is_one_line_exit_2(tmp_path, content, expected):
    path = tmp_path / "cluster.toml"
    path.write_text(content)
    proc = subprocess.run(
        [sys.executable, "-m", "mesosspawner.localmesos", "--config", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(path) in lines[0] and expected in lines[0]
    assert "Traceback" not in proc.stderr


def test_agent_with_bad_resources_is_one_line_exit_2():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mesosspawner.localmesos",
            "agent",
            "--master",
            "http://127.0.0.1:9",
            "--hostname",
            "x",
            "--resources",
            "cpus:1;mem",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "'mem'" in proc.stderr


def _agent_proc(master: str, hostname: str, resources: str, log_path) -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115 - the child's stderr
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mesosspawner.localmesos",
            "agent",
            "--master",
            master,
            "--hostname",
            hostname,
            "--resources",
            resources,
            "--attributes",
            "rack:r9",
            "--status-retry-interval",
            "0.5",
        ],
        stdout=log,
        stderr=log,
    )


async def _offer_from(s: RawScheduler, hostname: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for o in await s.offers(timeout=deadline - time.monotonic()):
            if o["hostname"] == hostname:
                return o
    raise TimeoutError(f"no offer from {hostname}")


async def test_separate_agent_process_runs_tasks(tmp_path):
    master, url = start_cli(
        ["--port", "0", "--no-agents", "--heartbeat-interval", "1", "--allow-root-tasks"],
        tmp_path / "m.log",
    )
    agent = _agent_proc(url, "remote-1", "cpus:2;mem:1024;ports:[34000-34009]", tmp_path / "a.log")
    s = RawScheduler(url)
    try:
        await s.subscribe(framework_info())
        offer = await _offer_from(s, "remote-1")
        assert {"name": "rack", "type": "TEXT", "text": {"value": "r9"}} in offer["attributes"]
        await s.accept([offer["id"]["value"]], [command_task(offer, "t-r", "exit 0", cpus=0.5)])
        states = []
        while not states or states[-1] != "TASK_FINISHED":
            st = await s.update("t-r")
            states.append(st["state"])
            await s.ack(st)
        assert states == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    finally:
        await s.close()
        stop_cli(agent)
        stop_cli(master)


async def test_zookeeper_election_redirect_and_failover(zookeeper, unique_zk_path, tmp_path):
    zk = f"zk://{zookeeper.hosts}{unique_zk_path}"
    common = [
        "--port",
        "0",
        "--no-agents",
        "--zk",
        zk,
        "--heartbeat-interval",
        "1",
        "--agent-unreachable-timeout",
        "30",
        "--allow-root-tasks",
    ]
    first, url1 = start_cli(common, tmp_path / "m1.log")
    procs = [first]
    s = s2 = None
    try:
        await _wait_state(url1)
        second, url2 = start_cli(common, tmp_path / "m2.log")
        procs.append(second)
        port1 = url1.rsplit(":", 1)[1]
        # The standby redirects to the leader, as a Mesos master does.
        code, _ = await post(url2, "{}", {"Content-Type": "application/json"})
        assert code == 307
        headers = await _head(url2)
        assert headers["location"] == f"//127.0.0.1:{port1}/api/v1/scheduler"
        # znodes carry MasterInfo JSON.
        from kazoo.client import KazooClient

        kz = KazooClient(hosts=zookeeper.hosts)
        await asyncio.to_thread(kz.start)
        children = sorted(await asyncio.to_thread(kz.get_children, unique_zk_path))
        # Like Mesos's log_replicas, the agent registry lives beside the json.info_ nodes.
        children = [c for c in children if c != "localmesos.registry"]
        assert len(children) == 2
        assert all(re.fullmatch(r"json\.info_\d{10}", c) for c in children)
        data, _ = await asyncio.to_thread(kz.get, f"{unique_zk_path}/{children[0]}")
        info = json.loads(data)
        assert info["address"] == {"hostname": "127.0.0.1", "ip": "127.0.0.1", "port": int(port1)}
        assert info["ip"] == 16777343  # 127.0.0.1 as uint32 in network order
        await asyncio.to_thread(kz.stop)

        agent = _agent_proc(zk, "ha-1", "cpus:2;mem:1024;ports:[35000-35009]", tmp_path / "a.log")
        procs.append(agent)
        s = RawScheduler(url1)
        await s.subscribe(framework_info(failover_timeout=600))
        fid = s.framework_id
        offer = await _offer_from(s, "ha-1")
        await s.accept([offer["id"]["value"]], [command_task(offer, "t-ha", "sleep 120", cpus=0.5)])
        while (st := await s.update("t-ha"))["state"] != "TASK_RUNNING":
            await s.ack(st)
        await s.ack(st)

        # The leader dies while the agent is frozen: the standby takes over knowing the agent
        # from the registry, and must not call its task lost before it re-registers.
        agent.send_signal(signal.SIGSTOP)
        stop_cli(first)
        await s.close()
        s2 = RawScheduler(url2)
        deadline = time.monotonic() + 30
        while True:
            code, _ = await post(url2, "{}", {"Content-Type": "application/json"})
            if code != 307 and code != 503:
                break
            assert time.monotonic() < deadline, "standby never took over"
            await asyncio.sleep(0.2)
        await s2.subscribe(framework_info(failover_timeout=600, id={"value": fid}))
        assert s2.framework_id == fid
        explicit = {"tasks": [{"task_id": {"value": "t-ha"}, "agent_id": offer["agent_id"]}]}
        assert (await s2.call({"type": "RECONCILE", "reconcile": explicit}))[0] == 202
        with pytest.raises(TimeoutError):
            await s2.update("t-ha", timeout=1.5)
        agent.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 30
        while True:
            await s2.call({"type": "RECONCILE", "reconcile": {"tasks": []}})
            try:
                st = await s2.update("t-ha", timeout=1)
                break
            except TimeoutError:
                assert time.monotonic() < deadline, "the agent never re-registered its task"
        assert st["state"] == "TASK_RUNNING"
        state = _state(url2)
        assert [a["hostname"] for a in state["slaves"]] == ["ha-1"]
        assert state["slaves"][0]["used_resources"]["cpus"] == 0.5
    finally:
        for conn in (s, s2):
            if conn is not None:
                await conn.close()
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGCONT)
            stop_cli(p)


async def _wait_state(url: str) -> None:
    for _ in range(100):
        try:
            await asyncio.to_thread(_state, url)
            return
        except OSError:
            await asyncio.sleep(0.1)


async def _head(url: str) -> dict:
    host, port = url.split("//")[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}"
    )
    await writer.drain()
    await reader.readline()
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    writer.close()
    return headers


async def test_in_process_agents_follow_the_zookeeper_leader(
    zookeeper, unique_zk_path, cluster_config, tmp_path
):
    from mesosspawner.localmesos.cluster import LocalCluster

    c = LocalCluster(
        cluster_config,
        port=0,
        zk=f"zk://{zookeeper.hosts}{unique_zk_path}",
        heartbeat_interval=1,
        work_dir=str(tmp_path),
    )
    await c.start()
    s = RawScheduler(c.url)
    try:
        deadline = time.monotonic() + 20
        while c.master is None:
            assert time.monotonic() < deadline, "never elected"
            await asyncio.sleep(0.1)
        await s.subscribe(framework_info(capabilities=[{"type": "GPU_RESOURCES"}]))
        hosts: set[str] = set()
        while hosts != {"agent-1", "gpu-1", "spark-1"}:
            hosts |= {o["hostname"] for o in await s.offers(timeout=20)}
    finally:
        await s.close()
        await c.stop()
