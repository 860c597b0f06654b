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
import json
import time

import pytest

from mesosspawner.testing import spark as spark_testing
from tests.services.e2e import (
    docker_notebook_config,
    mesos_config,
    spawner_state,
    start_ready,
    tasks_by_id,
    wait_for,
)
from tests.services.spark import (
    CORES_MAX,
    JOB,
    SUM,
    check_executors,
    print_spark_view,
    running_tasks,
    spark_frameworks,
    spark_profile_config,
)

# A fresh machine builds the base notebook and both Spark images (about 4 minutes on 2 cores)
# and pushes them once (about a minute) inside the fixtures, which the timeout counts.
pytestmark = pytest.mark.timeout(1800)


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


def notebook_container(client, state: dict, task_id: str):
    task = tasks_by_id(state)[task_id]
    ids = {
        st["container_status"]["container_id"]["value"]
        for st in task["statuses"]
        if st.get("container_status", {}).get("container_id")
    }
    return client.containers.get(f"mesos-{ids.pop()}")
