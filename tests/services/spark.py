"""Spark on real Mesos for the e2e tests: the Spark images, a cluster with a Spark machine, the
Spark profile's hub config, a job and the master's view of notebooks' Spark frameworks.

Fixtures:
- ``spark_images`` (module): spark-notebook and spark-executor, pushed to a loopback registry;
  name -> reference pinned by digest.
- ``spark_agents``: a plain agent and a Spark machine (``localhost``, ``cpus(spark)``).
- ``spark_cluster_factory``: ``make(secure=False)`` -> a real cluster of those agents (Docker
  containerizer), whose containers are removed at teardown; ``spark_cluster``: one, not secure.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesosspawner.testing import spark as spark_testing
from tests.services.cluster import AgentSpec, port_block, release_port_block
from tests.services.docker import LOCK_DIR

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
def spark_cluster_factory(real_mesos_home, clusters, spark_agents, docker_client):
    """``make(secure=False)``: real Mesos (Docker containerizer) with the agents above, in
    secure mode with ``secure`` (``cluster.security``). At teardown (after the hub's: the test
    asks for ``hub_factory`` later) every container its agents started is removed before the
    cluster stops: the agents run with --docker_kill_orphans=false (they share the engine with
    other tests), so nothing else would."""
    made = []

    def make(*, secure: bool = False):
        cluster = clusters(
            "real",
            agents=spark_agents,
            docker=True,
            agent_flags=("--executor_registration_timeout=5mins",),
            secure=secure,
        )
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        for agent in cluster.cluster.agents:
            spark_testing.remove_containers_under(docker_client, agent.work_dir)
        cluster.close()
        for agent in cluster.cluster.agents:  # anything launched while it stopped
            spark_testing.remove_containers_under(docker_client, agent.work_dir)


@pytest.fixture
def spark_cluster(spark_cluster_factory):
    """The Spark cluster above, not secure."""
    return spark_cluster_factory()


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
