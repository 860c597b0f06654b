"""The Spark profile runs real Spark jobs: JupyterHub -> MesosSpawner -> REAL Mesos 1.11 -> the
spark-notebook image (Docker containerizer), whose kernel's no-argument
``SparkSession.builder.getOrCreate()`` registers a PySpark 3.5 driver with the same master, and
whose executors are Mesos tasks of role ``spark`` in the spark-executor image on the
spark-reserved agent, as the notebook's user. Code runs through the Jupyter kernel API, the way
a notebook cell does; the master's /master/state is the judge.

One hub and one cluster for every check (the images' cold build, a notebook start and a Spark
session each cost tens of seconds on a loaded 2-core machine): two users' jobs at once, each
within its ``spark.cores.max``; stopping one server; killing the other notebook behind the hub's
back (an orphaned Spark framework).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import random
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from mesosspawner import downloads, images
from tests.e2e.harness import master_state
from tests.e2e.mesos_env import (
    docker_notebook_config,
    mesos_config,
    spawner_state,
    start_ready,
    tasks_by_id,
)
from tests.services import real_mesos as mesos_install
from tests.services.docker import LOCK_DIR
from tests.services.net import free_port

# A fresh machine builds the base notebook and both Spark images (about 4 minutes on 2 cores)
# and pushes them once (about a minute) inside the fixtures, which the timeout counts.
pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1800)]

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"
_BASE = random.Random().randrange(40000, 45000, 100)
# Executors bind to the hostname of the agent's offer (``--hostname`` of CoarseGrainedExecutor-
# Backend): the Spark agent's name must resolve, so it is "localhost" here, not a fake name.
AGENTS = (
    {
        "hostname": "plain-1",
        "resources": f"cpus:4;mem:4096;disk:10000;ports:[{_BASE}-{_BASE + 29}]",
        "attributes": "rack:r1",
    },
    {
        "hostname": "localhost",
        "resources": (
            "cpus(spark):6;mem(spark):8192;cpus:0.5;mem:512;disk:20000;"
            f"ports:[{_BASE + 30}-{_BASE + 79}]"
        ),
        "attributes": "rack:r2;spark_cluster:prod",
    },
)
CORES_MAX = 2
SUM = 49999995000000

JOB = """
import json, os, platform, time
from pyspark.sql import SparkSession
from pyspark.sql.functions import udf

spark = SparkSession.builder.getOrCreate()
t0 = time.time()
total = spark.range(10**7).selectExpr("sum(id)").collect()[0][0]
seconds = time.time() - t0
square = udf(lambda x: x * x, "long")
squares = sorted(r[0] for r in spark.range(5).select(square("id")).collect())
sc = spark.sparkContext
workers = sc.parallelize(range(8), 8).map(
    lambda _: (os.getuid(), os.getgid(), platform.python_version())
).distinct().collect()
print(json.dumps({
    "total": total, "seconds": seconds, "squares": squares, "name": sc.appName,
    "workers": sorted(workers), "driver_python": platform.python_version(),
    "executors": sc._jsc.sc().getExecutorMemoryStatus().size() - 1,
}))
"""


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def spark_registry(tmp_path_factory) -> Iterator[str]:
    """A loopback registry whose storage outlives the session (beside the downloads cache):
    the Spark images' 1.4 GB are pushed once per machine and content hash, not on every run.
    Delete ~/.cache/mesosspawner/test-registry to reclaim the space."""
    storage = downloads.cache_dir().parent / "test-registry"
    storage.mkdir(parents=True, exist_ok=True)
    work = tmp_path_factory.mktemp("spark-registry")
    address = f"127.0.0.1:{free_port()}"
    config = work / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
        f"http:\n  addr: {address}\n"
    )
    with open(work / "registry.log", "ab") as log:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://{address}/v2/", timeout=2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    work / "registry.log"
                ).read_text()[-2000:]
                time.sleep(0.2)
        yield address
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def spark_images(docker_client, base_image, spark_registry) -> dict[str, str]:
    """spark-notebook and spark-executor built on the debootstrap base (or reused by content
    hash), pushed to the loopback registry; name -> reference pinned by digest."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_DIR / "spark-images", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions build and push them once
        t0 = time.monotonic()
        results = images.build_and_push(
            docker_client,
            DOCKER_DIR,
            spark_registry,
            only=["spark-executor"],
            build_args={"BASE_IMAGE": base_image},
            push=True,
        )
        built = [r.name for r in results.values() if r.built]
        pushed = [r.name for r in results.values() if r.pushed]
        print(f"spark images: built {built}, pushed {pushed} in {time.monotonic() - t0:.0f} s")
    return {name: f"{r.ref.rpartition(':')[0]}@{r.digest}" for name, r in results.items()}


def spark_profile_config(images_: dict[str, str], master: str, lib_dir: Path) -> str:
    return f"""
c.Spawner.poll_interval = 3600  # the orphan check below must be the spawner's own sweep
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}  # spawns answer 202 at once
c.MesosSpawner.spark_cleanup_interval = 2
c.MesosSpawner.profile_list = [
    {{"display_name": "CPU", "slug": "cpu", "default": True}},
    {{"display_name": "Spark", "slug": "spark", "mesosspawner_override": {{
        "image": {images_["spark-notebook"]!r},
        "role": "spark", "cpu_limit": 0.5, "mem_limit": "1536M",
        # Stopped at once, as a notebook stuck past its grace period is: its driver never
        # unregisters, so only the spawner's teardown can remove its framework.
        "kill_grace_seconds": 0,
        "spark_master": {master!r},
        "spark_role": "spark",
        "spark_executor_image": {images_["spark-executor"]!r},
        "spark_executor_constraints": "spark_cluster:prod",
        "spark_cores_max": {CORES_MAX},
        "spark_mesos_native_library": {str(lib_dir / "libmesos-java.so")!r},
        "spark_conf": {{
            "spark.executor.cores": "1",
            "spark.executor.memory": "512m",
            # Jobs start once both executors registered (a loaded machine may be slow to start
            # the second): the executor counts below are then exact.
            "spark.scheduler.minRegisteredResourcesRatio": "1.0",
            # A dead driver's framework then stays registered for 10 minutes (an orphan) unless
            # the spawner tears it down: what the stop and orphan checks rely on.
            "spark.mesos.driver.failoverTimeout": "600",
        }},
    }}}},
]
"""


# ---------------------------------------------------------------------------- kernel API


async def run_cell(hub, user: str, code: str, timeout: float = 300) -> str:
    """Run ``code`` in a new python3 kernel of the user's server through the proxy, the way a
    notebook cell runs (Jupyter messaging over the kernel's WebSocket); its stdout."""
    code_, kernel = await hub.request_through_proxy(
        user, method="POST", path="api/kernels", json={"name": "python3"}
    )
    assert code_ == 201, kernel
    token = await hub.user_token(user)
    url = hub.server_url(user).replace("http://", "ws://") + f"api/kernels/{kernel['id']}/channels"
    ws = await websocket_connect(
        HTTPRequest(url, headers={"Authorization": f"token {token}"}), max_message_size=1 << 26
    )
    msg_id = uuid.uuid4().hex
    ws.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "username": user,
                    "session": uuid.uuid4().hex,
                    "msg_type": "execute_request",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
                "buffers": [],
            }
        )
    )
    out, error = [], None
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"cell still running after {timeout} s; output so far: {out}"
            raw = await asyncio.wait_for(ws.read_message(), left)
            assert raw is not None, f"kernel channel closed; output so far: {out}"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content["name"] == "stdout":
                out.append(content["text"])
            elif kind == "error":
                error = "\n".join(content["traceback"])
            elif kind == "execute_reply":
                break
    finally:
        ws.close()
    assert error is None, f"the cell failed:\n{error}"
    return "".join(out)


# ---------------------------------------------------------------------------- master's view


def spark_frameworks(state: dict, task_id: str) -> list[dict]:
    """Registered frameworks named for the notebook ``task_id`` (spark.app.name)."""
    return [fw for fw in state["frameworks"] if fw["name"] == task_id]


async def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen after {timeout} s")
        await asyncio.sleep(0.5)


def containers_of(client, work_dir: Path) -> list[dict]:
    """Docker containers (summaries: Id, State, Mounts) whose sandbox mount lies under a
    cluster's work directory. Read in one call: the agents remove exited ones any time."""
    root = str(work_dir)
    return [
        c
        for c in client.api.containers(all=True)
        if any(m.get("Source", "").startswith(root) for m in c.get("Mounts", []))
    ]


# ---------------------------------------------------------------------------- the test


async def test_spark_profile_runs_jobs_on_mesos_executors_and_leaves_nothing_behind(
    docker_client, spark_images, hub_factory, real_mesos, homes, test_users, tmp_path
):
    lib = mesos_lib_dir()
    assert (lib / "libmesos-java.so").exists(), (
        f"{lib}/libmesos-java.so missing: run MESOS_BUNDLE=... bash scripts/install-mesos.sh"
    )
    cluster = real_mesos(
        agents=AGENTS, docker=True, agent_extra=("--executor_registration_timeout=5mins",)
    )
    master_url = cluster.url
    spark_master = "mesos://" + master_url.removeprefix("http://")
    config = mesos_config(
        master_url,
        homes,
        docker_notebook_config(spark_images["spark-notebook"], homes)
        + spark_profile_config(spark_images, spark_master, lib),
    )
    hub = await hub_factory(config, start_timeout=300).launch()
    alice, bob = test_users[0], test_users[1]
    try:
        for user in (alice, bob):
            await hub.create_user(user.name)
        t0 = time.monotonic()
        (alice_server, (bob_server, progress)) = await asyncio.gather(
            start_ready(hub, alice.name, options={"profile": "spark"}),
            start_with_progress(hub, bob.name),
        )
        servers = [alice_server, bob_server]
        print(f"two Spark notebooks ready in {time.monotonic() - t0:.0f} s")
        # The spawn's progress says what the Spark role has free for executors.
        notes = [e["message"] for e in progress if "Spark role spark" in e["message"]]
        assert notes and "of 6 CPUs" in notes[0] and "executors may hold 2" in notes[0], notes
        task_ids = {u.name: s["task_id"] for u, s in zip((alice, bob), servers, strict=True)}

        # Both users' jobs at once, through the kernel API.
        t0 = time.monotonic()
        outputs = await asyncio.gather(*(run_cell(hub, u.name, JOB) for u in (alice, bob)))
        print(f"both jobs done in {time.monotonic() - t0:.0f} s")
        state = await master_state(master_url)
        print_spark_view(state, task_ids.values())
        spark_agent = next(a for a in state["slaves"] if a["hostname"] == "localhost")
        for user, raw in zip((alice, bob), outputs, strict=True):
            result = json.loads(raw.strip().splitlines()[-1])
            print(f"{user.name}: {result}")
            assert result["total"] == SUM
            assert result["squares"] == [0, 1, 4, 9, 16]  # a Python UDF on the executors
            assert result["name"] == task_ids[user.name]
            # Python workers on the executors: the notebook's user and the driver's Python.
            assert result["workers"] == [[user.uid, user.gid, result["driver_python"]]]
            check_executors(state, task_ids[user.name], user, spark_agent, spark_images)
            assert result["executors"] == CORES_MAX  # every executor still registered: none lost
        # Each within its spark.cores.max, although the Spark role had room for more.
        assert spark_agent["reserved_resources"]["spark"]["cpus"] > 2 * CORES_MAX + 1

        # Stopping alice's server leaves no Spark framework and no executor behind.
        alice_fw = spark_frameworks(state, task_ids[alice.name])[0]["id"]
        await hub.stop_server(alice.name)
        state = await master_state(master_url)
        assert spark_frameworks(state, task_ids[alice.name]) == []
        gone = {fw["id"]: fw for fw in state["completed_frameworks"]}
        assert alice_fw in gone
        assert all(t["state"] != "TASK_RUNNING" for t in gone[alice_fw]["completed_tasks"])
        assert not any(t["framework_id"] == alice_fw for t in running_tasks(state))

        # bob's notebook dies behind the hub's back: its Spark framework (kept registered by
        # its failover timeout) is found and torn down by the spawner's sweep.
        bob_fw = spark_frameworks(state, task_ids[bob.name])[0]["id"]
        nb = notebook_container(docker_client, state, task_ids[bob.name])
        nb.kill()

        async def bob_torn_down():
            s = await master_state(master_url)
            done = {fw["id"] for fw in s["completed_frameworks"]}
            return bob_fw in done and not spark_frameworks(s, task_ids[bob.name])

        await wait_for(bob_torn_down, 60, f"teardown of bob's orphaned framework {bob_fw}")
        assert "orphan: its notebook" in hub.log_text()

        async def no_executor_containers():
            left = containers_of(docker_client, cluster.agents[1].work_dir)
            return not [c for c in left if c["State"] == "running"]

        await wait_for(no_executor_containers, 60, "no Spark container left running")
    finally:
        for c in containers_of(docker_client, cluster.agents[1].work_dir):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                docker_client.api.remove_container(c["Id"], force=True)


async def start_with_progress(hub, user: str) -> tuple[dict, list[dict]]:
    """Start the user's Spark server and follow its progress stream until it is ready."""
    code = await hub.start_server(user, "", {"profile": "spark"})
    assert code == 202, code  # slow_spawn_timeout 0: the spawn goes on in the background
    events = await hub.progress(user, timeout=300)
    await hub.wait_server_ready(user)
    return await spawner_state(hub, user), events


def mesos_lib_dir() -> Path:
    """The agents' Mesos libraries (libmesos-java.so beside libmesos), as installed here."""
    home = mesos_install.mesos_home()
    assert home is not None, mesos_install.why_unavailable()
    return home / "lib"


def print_spark_view(state: dict, notebooks) -> None:
    """The master's view of the notebooks' Spark frameworks and executors (for the log)."""
    agents = {a["id"]: a["hostname"] for a in state["slaves"]}
    for fw in state["frameworks"]:
        if fw["name"] not in notebooks:
            continue
        role = fw.get("roles") or fw.get("role")
        print(f"framework {fw['id']} name={fw['name']} role={role} user={fw['user']}"
              f" active={fw['active']} pid={fw.get('pid')}")  # fmt: skip
        for t in fw["tasks"]:
            params = t["container"]["docker"].get("parameters", [])
            print(
                f"  executor task {t['id']} {t['state']} role={t['role']}"
                f" agent={agents[t['slave_id']]} cpus={t['resources']['cpus']:g}"
                f" mem={t['resources']['mem']:g} {t['container']['type']}"
                f" image={t['container']['docker']['image']} docker_params={params}"
            )


def running_tasks(state: dict) -> list[dict]:
    return [t for fw in state["frameworks"] for t in fw["tasks"] if t["state"] == "TASK_RUNNING"]


def check_executors(state: dict, notebook: str, user, spark_agent: dict, images_: dict) -> None:
    """The notebook's Spark framework as the master sees it: role spark, the person's user,
    executors on the spark-reserved agent in the executor image, within spark.cores.max, and
    none lost."""
    (fw,) = spark_frameworks(state, notebook)
    assert fw["active"] and fw["user"] == user.name
    assert (fw.get("roles") or [fw.get("role")]) == ["spark"]
    executors = fw["tasks"]
    assert len(executors) == CORES_MAX, executors
    assert sum(t["resources"]["cpus"] for t in executors) <= CORES_MAX
    for t in executors:
        assert t["state"] == "TASK_RUNNING"
        assert t["role"] == "spark"
        assert t["slave_id"] == spark_agent["id"]
        docker_info = t["container"]["docker"]
        assert t["container"]["type"] == "DOCKER"
        assert docker_info["image"] == images_["spark-executor"]
        params = {p["key"]: p["value"] for p in docker_info.get("parameters", [])}
        assert params["user"] == f"{user.uid}:{user.gid}"
        labels = {lab["key"]: lab["value"] for lab in t.get("labels", [])}
        assert labels["mesosspawner.notebook"] == notebook
    assert fw.get("completed_tasks", []) == []  # no executor failed or was lost


def notebook_container(client, state: dict, task_id: str):
    task = tasks_by_id(state)[task_id]
    ids = {
        st["container_status"]["container_id"]["value"]
        for st in task["statuses"]
        if st.get("container_status", {}).get("container_id")
    }
    return client.containers.get(f"mesos-{ids.pop()}")
