"""MesosSpawner end to end on REAL Apache Mesos 1.11.0: JupyterHub + proxy + mesos-master +
mesos-agents on loopback + real jupyterhub-singleuser, the same checks the localmesos e2e tier
makes (tests/e2e/test_mesos_spawner.py), judged by the real master's /master/state.

The CPU profile runs twice: as a plain command task (Mesos containerizer, posix launcher), and in
the lab's notebook image on the Docker containerizer (real ``mesos-docker-executor`` and Docker
engine) in tests/e2e_real/test_real_docker.py.
"""

from __future__ import annotations

import asyncio
import json

from tests.e2e.harness import master_state
from tests.e2e.mesos_env import (
    agent_of,
    assert_notebook_writes_as_user,
    mesos_config,
    proc_ids,
    start_ready,
    task_env,
    tasks_by_id,
)

# A default agent (posix filesystem isolator, no filesystem/linux: that needs the linux launcher
# and root cgroups v1 hierarchies this tier does not assume) refuses any volume on a command
# task: "Failed to launch container: Volumes in ContainerInfo is not supported". A plain
# notebook uses its {username} directory on the host directly (notebook_dir), so none is needed.
PLAIN = "c.MesosSpawner.volumes = []\n"


def ports_of(task: dict) -> set[int]:
    held = set()
    for part in task["resources"]["ports"].strip("[]").split(","):
        lo, hi = (int(x) for x in part.strip().split("-"))
        held.update(range(lo, hi + 1))
    return held


async def check_cpu_profile(hub, cluster, user, state: dict, homes) -> None:
    """The default (CPU) profile: a plain command task on the plain agent, run by the real
    agent as the user's uid/gid, writing into the user's directory as the user."""
    code, status = await hub.get_through_proxy(user.name, path="api/status")
    assert code == 200, status
    master = await master_state(cluster.url)
    task = tasks_by_id(master)[state["task_id"]]
    assert task["state"] == "TASK_RUNNING"
    assert agent_of(master, task)["hostname"] == "plain-1"
    assert task["user"] == user.name  # command.user, switched to by the real agent
    assert task["role"] == "*"
    labels = {lab["key"]: lab["value"] for lab in task.get("labels", [])}
    assert labels.get("jupyterhub.user") and labels.get("jupyterhub.hub")
    assert state["host_port"] in ports_of(task)

    assert proc_ids(state["task_id"]) == (user.uid, user.gid)
    await assert_notebook_writes_as_user(hub, user, homes, "from-real-mesos.txt")
    token = task_env(state["task_id"])["JUPYTERHUB_API_TOKEN"]
    assert token not in json.dumps(master)


async def check_spark_profile(hub, cluster, user, state: dict) -> None:
    """The Spark profile: role ``spark`` resources on the spark-reserved agent, its extra
    ports from the offer, and the SPARK_* environment that points Spark at them."""
    master = await master_state(cluster.url)
    task = tasks_by_id(master)[state["task_id"]]
    spark_agent = agent_of(master, task)
    # 2 cpus / 1 GB exist only in role spark on spark-1 (its unreserved part is 0.5 cpus).
    assert spark_agent["hostname"] == "spark-1"
    assert task["role"] == "spark"
    assert task["resources"]["cpus"] == 2
    assert "spark" in task["framework"]["roles"]
    assert spark_agent["reserved_resources"]["spark"]["cpus"] == 4
    assert spark_agent["used_resources"]["cpus"] >= 2

    env = task_env(state["task_id"])
    assert env["SPARK_MASTER"] == env["MASTER"] == "mesos://zk://127.0.0.1:2181/mesos"
    opts = env["PYSPARK_SUBMIT_ARGS"]
    assert "spark.mesos.executor.docker.image=registry.example/spark-executor:3.5.3" in opts
    assert "spark.mesos.role=spark" in opts

    def conf(key: str) -> str:
        return opts.split(f"{key}=", 1)[1].split()[0].strip("'\"")

    used = [
        int(conf("spark.driver.port")),
        int(conf("spark.driver.blockManager.port")),  # never spark.blockManager.port
        int(conf("spark.ui.port")),
        int(env["MESOSSPAWNER_DRIVER_LIBPROCESS_PORT"]),  # the driver's; not LIBPROCESS_PORT
        state["host_port"],
    ]
    assert len(set(used)) == 5
    assert set(used) <= ports_of(task)
    assert conf("spark.driver.host") == env["MESOSSPAWNER_DRIVER_LIBPROCESS_IP"] == "127.0.0.1"
    code, _ = await hub.get_through_proxy(user.name, path="api/status")
    assert code == 200


async def test_cpu_and_spark_profiles_then_hub_restart_loses_and_relaunches_nothing(
    hub_factory, real_mesos, homes, test_users
):
    """One hub and cluster for three checks (each hub and notebook start costs 10-30 s on a
    loaded 2-core machine): CPU profile, Spark profile, then a SIGKILLed hub's restart."""
    cluster = real_mesos()
    hub = await hub_factory(mesos_config(cluster.url, homes, PLAIN)).launch()
    cpu_user, spark_user = test_users[0], test_users[2]
    for user in (cpu_user, spark_user):
        await hub.create_user(user.name)
    cpu, spark = await asyncio.gather(
        start_ready(hub, cpu_user.name),
        start_ready(hub, spark_user.name, options={"profile": "spark"}),
    )
    await check_cpu_profile(hub, cluster, cpu_user, cpu, homes)
    await check_spark_profile(hub, cluster, spark_user, spark)

    before = await master_state(cluster.url)
    framework_id = before["frameworks"][0]["id"]
    assert set(tasks_by_id(before)) == {cpu["task_id"], spark["task_id"]}

    hub.kill()  # SIGKILL: no chance to clean up
    await hub.restart()

    for user in (cpu_user, spark_user):
        server = await hub.wait_server_ready(user.name, timeout=30)
        assert server["ready"]
        code, _ = await hub.get_through_proxy(user.name, path="api/status")
        assert code == 200
    after = await master_state(cluster.url)
    assert [f["id"] for f in after["frameworks"]] == [framework_id]
    assert after["frameworks"][0]["active"] is True
    assert after.get("completed_frameworks", []) == []
    tasks = tasks_by_id(after)
    assert set(tasks) == {cpu["task_id"], spark["task_id"]}  # 0 relaunched
    for t in tasks.values():  # 0 lost: RUNNING throughout, no other state since
        assert t["state"] == "TASK_RUNNING"
        assert [st["state"] for st in t["statuses"]][-1] == "TASK_RUNNING"

    # The restarted hub still owns its notebooks: stopping one kills its task.
    await hub.stop_server(cpu_user.name)
    tasks = tasks_by_id(await master_state(cluster.url))
    assert tasks[cpu["task_id"]]["state"] == "TASK_KILLED"
    assert tasks[spark["task_id"]]["state"] == "TASK_RUNNING"
