"""The Spark profile runs real Spark jobs: JupyterHub -> MesosSpawner -> REAL Mesos 1.11 -> the
spark-notebook image (Docker containerizer), whose kernel's no-argument
``SparkSession.builder.getOrCreate()`` registers a PySpark 3.5 driver with the same master, and
whose executors are Mesos tasks of role ``spark`` in the spark-executor image on the
spark-reserved agent, as the notebook's user. Code runs through the Jupyter kernel API, the way
a notebook cell does (``Hub.run_cell``); the master's /master/state is the judge.

Real Mesos only, on purpose: Spark 3.5 drives Mesos through libmesos (the v0 scheduler driver,
in the JVM through JNI), which localmesos does not speak, so this test takes no ``mesos_kind``.

One hub and one cluster of its own for every check (the images' cold build, a notebook start and
a Spark session each cost tens of seconds on a loaded 2-core machine): two people's jobs at
once, each within its ``spark.cores.max``; stopping one server; killing the other notebook
behind the hub's back (an orphaned Spark framework). Its containers are removed before its
cluster stops, whatever happens.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesosspawner.testing import spark as spark_testing
from tests.services.cluster import AgentSpec, port_block, release_port_block
from tests.services.docker import LOCK_DIR
from tests.services.e2e import (
    docker_notebook_config,
    mesos_config,
    spawner_state,
    start_ready,
    tasks_by_id,
    wait_for,
)

# A fresh machine builds the base notebook and both Spark images (about 4 minutes on 2 cores)
# and pushes them once (about a minute) inside the fixtures, which the timeout counts.
pytestmark = pytest.mark.timeout(1800)

CORES_MAX = 2
SUM = spark_testing.SUM

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


@pytest.fixture
def spark_agents() -> Iterator[tuple[AgentSpec, ...]]:
    """A plain agent and a Spark machine, on ports no other test process uses. Executors bind
    to the hostname of the agent's offer (``--hostname`` of CoarseGrainedExecutorBackend): the
    Spark agent's name must resolve, so it is ``localhost`` here, not a fake name."""
    base = port_block()
    yield (
        AgentSpec("plain-1", f"cpus:4;mem:4096;disk:10000;ports:[{base}-{base + 29}]", "rack:r1"),
        AgentSpec(
            "localhost",
            "cpus(spark):6;mem(spark):8192;cpus:0.5;mem:512;disk:20000;"
            f"ports:[{base + 30}-{base + 79}]",
            "rack:r2;spark_cluster:prod",
        ),
    )
    release_port_block(base)


@pytest.fixture
def spark_cluster(real_mesos_home, clusters, spark_agents, docker_client):
    """Real Mesos (Docker containerizer) with the agents above. At teardown (after the hub's:
    the test asks for ``hub_factory`` later) every container its agents started is removed
    before the cluster stops: the agents run with --docker_kill_orphans=false (they share the
    engine with other tests), so nothing else would."""
    cluster = clusters(
        "real",
        agents=spark_agents,
        docker=True,
        agent_flags=("--executor_registration_timeout=5mins",),
    )
    yield cluster
    for agent in cluster.cluster.agents:
        spark_testing.remove_containers_under(docker_client, agent.work_dir)
    cluster.close()
    for agent in cluster.cluster.agents:  # anything launched while it stopped
        spark_testing.remove_containers_under(docker_client, agent.work_dir)


@pytest.fixture(scope="module")
def spark_images(docker_client, base_image, tmp_path_factory) -> Iterator[dict[str, str]]:
    """spark-notebook and spark-executor built on the debootstrap base (or reused by content
    hash), pushed to a loopback registry that keeps them between runs; name -> reference
    pinned by digest. The registry serves the test's pulls too."""
    workdir = tmp_path_factory.mktemp("spark-registry")
    with spark_testing.cached_registry(workdir) as registry:
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        with open(LOCK_DIR / "spark-images", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # parallel sessions build and push them once
            t0 = time.monotonic()
            pinned = spark_testing.build_images(docker_client, registry, base_image)
            print(f"spark images ready in {time.monotonic() - t0:.0f} s")
        yield pinned


def spark_profile_config(images: dict[str, str], master: str, library: Path) -> str:
    return f"""
c.Spawner.poll_interval = 3600  # the orphan check below must be the spawner's own sweep
c.JupyterHub.tornado_settings = {{"slow_spawn_timeout": 0}}  # spawns answer 202 at once
c.MesosSpawner.spark_cleanup_interval = 2
c.MesosSpawner.profile_list = [
    {{"display_name": "CPU", "slug": "cpu", "default": True}},
    {{"display_name": "Spark", "slug": "spark", "mesosspawner_override": {{
        "image": {images["spark-notebook"]!r},
        "role": "spark", "cpu_limit": 0.5, "mem_limit": "1536M",
        # Stopped at once, as a notebook stuck past its grace period is: its driver never
        # unregisters, so only the spawner's teardown can remove its framework.
        "kill_grace_seconds": 0,
        "spark_master": {master!r},
        "spark_role": "spark",
        "spark_executor_image": {images["spark-executor"]!r},
        "spark_executor_constraints": "spark_cluster:prod",
        "spark_cores_max": {CORES_MAX},
        "spark_mesos_native_library": {str(library)!r},
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


# ---------------------------------------------------------------------------- the test


async def test_spark_profile_runs_jobs_on_mesos_executors_and_leaves_nothing_behind(
    spark_images, spark_cluster, hub_factory, homes, new_user, docker_client
):
    library = spark_testing.java_library()
    assert library is not None, (
        "lib/libmesos-java.so missing: run MESOS_BUNDLE=... bash scripts/install-mesos.sh"
    )
    cluster = spark_cluster
    spark_master = "mesos://" + cluster.url.removeprefix("http://")
    config = mesos_config(
        cluster.url,
        homes,
        docker_notebook_config(spark_images["spark-notebook"], homes)
        + spark_profile_config(spark_images, spark_master, library),
    )
    t_hub = time.monotonic()
    hub = await hub_factory(config, start_timeout=300).launch()
    alice, bob = await new_user(), await new_user()
    for person in (alice, bob):
        await hub.create_user(person.name)
    t0 = time.monotonic()
    (alice_server, (bob_server, progress)) = await asyncio.gather(
        start_ready(hub, alice.name, options={"profile": "spark"}),
        start_with_progress(hub, bob.name),
    )
    print(f"two Spark notebooks ready in {time.monotonic() - t0:.0f} s")
    # The spawn's progress says what the Spark role has free for executors.
    notes = [e["message"] for e in progress if "Spark role spark" in e["message"]]
    assert notes and "of 6 CPUs" in notes[0], notes
    assert "executors may hold 2 CPUs" in notes[0], notes
    task_ids = {alice.name: alice_server["task_id"], bob.name: bob_server["task_id"]}

    # Both people's jobs at once, through the kernel API.
    t0 = time.monotonic()
    outputs = await asyncio.gather(*(hub.run_cell(u.name, JOB) for u in (alice, bob)))
    print(f"both jobs done in {time.monotonic() - t0:.0f} s")
    state = await cluster.state()
    print_spark_view(state, task_ids.values())
    spark_agent = next(a for a in state["slaves"] if a["hostname"] == "localhost")
    for person, raw in zip((alice, bob), outputs, strict=True):
        result = json.loads(raw.strip().splitlines()[-1])
        print(f"{person.name}: {result}")
        assert result["total"] == SUM
        assert result["squares"] == [0, 1, 4, 9, 16]  # a Python UDF on the executors
        assert result["name"] == task_ids[person.name]
        # Python workers on the executors: the notebook's user and the driver's Python.
        assert result["workers"] == [[person.uid, person.gid, result["driver_python"]]]
        check_executors(state, task_ids[person.name], person, spark_agent, spark_images)
        assert result["executors"] == CORES_MAX  # every executor still registered: none lost
    # Each within its spark.cores.max, although the Spark role had room for more.
    assert spark_agent["reserved_resources"]["spark"]["cpus"] > 2 * CORES_MAX + 1

    # Stopping alice's server leaves no Spark framework and no executor behind.
    alice_fw = spark_frameworks(state, task_ids[alice.name])[0]["id"]
    await hub.stop_server(alice.name)
    state = await cluster.state()
    assert spark_frameworks(state, task_ids[alice.name]) == []
    gone = {fw["id"]: fw for fw in state["completed_frameworks"]}
    assert alice_fw in gone
    assert all(t["state"] != "TASK_RUNNING" for t in gone[alice_fw]["completed_tasks"])
    assert not any(t["framework_id"] == alice_fw for t in running_tasks(state))

    # bob's notebook dies behind the hub's back: its Spark framework (kept registered by its
    # failover timeout) is found and torn down by the spawner's sweep.
    bob_fw = spark_frameworks(state, task_ids[bob.name])[0]["id"]
    notebook_container(docker_client, state, task_ids[bob.name]).kill()

    async def bob_torn_down():
        s = await cluster.state()
        done = {fw["id"] for fw in s["completed_frameworks"]}
        return bob_fw in done and not spark_frameworks(s, task_ids[bob.name])

    await wait_for(bob_torn_down, 60, f"teardown of bob's orphaned framework {bob_fw}", 0.5)
    assert "orphan: its notebook" in hub.log_text()

    async def no_executor_running():
        left = spark_testing.containers_under(
            docker_client, cluster.cluster.agent("localhost").work_dir
        )
        return not [c for c in left if c["State"] == "running"]

    await wait_for(no_executor_running, 60, "no Spark container left running", 0.5)
    print(f"the whole Spark check took {time.monotonic() - t_hub:.0f} s after the images")


async def start_with_progress(hub, user: str) -> tuple[dict, list[dict]]:
    """Start the user's Spark server and follow its progress stream until it is ready."""
    code = await hub.start_server(user, "", {"profile": "spark"})
    assert code == 202, code  # slow_spawn_timeout 0: the spawn goes on in the background
    events = await hub.progress(user, timeout=300)
    await hub.wait_server_ready(user)
    return await spawner_state(hub, user), events


# ---------------------------------------------------------------------------- master's view


def spark_frameworks(state: dict, task_id: str) -> list[dict]:
    """Registered frameworks named for the notebook ``task_id`` (spark.app.name)."""
    return [fw for fw in state["frameworks"] if fw["name"] == task_id]


def running_tasks(state: dict) -> list[dict]:
    return [t for fw in state["frameworks"] for t in fw["tasks"] if t["state"] == "TASK_RUNNING"]


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


def check_executors(state: dict, notebook: str, person, spark_agent: dict, images) -> None:
    """The notebook's Spark framework as the master sees it: role spark, the person's user,
    executors on the spark-reserved agent in the executor image, within spark.cores.max, and
    none lost."""
    (fw,) = spark_frameworks(state, notebook)
    assert fw["active"] and fw["user"] == person.name
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
        assert docker_info["image"] == images["spark-executor"]
        params = {p["key"]: p["value"] for p in docker_info.get("parameters", [])}
        assert params["user"] == f"{person.uid}:{person.gid}"
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
