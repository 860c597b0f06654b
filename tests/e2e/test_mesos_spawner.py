"""MesosSpawner end to end: real JupyterHub + proxy, localmesos, real jupyterhub-singleuser.

The cluster has a plain agent, a GPU agent and an agent whose cpus/mem are reserved for role
`spark`; the hub runs as root and notebooks run as the test users' own uid/gid.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.harness import master_state
from tests.e2e.mesos_env import (
    CLUSTER,
    agent_of,
    assert_notebook_writes_as_user,
    mesos_config,
    proc_ids,
    start_ready,
    task_env,
    tasks_by_id,
)


@pytest.fixture
async def cluster(localmesos_proc):
    return await localmesos_proc(CLUSTER)


# A default Mesos agent (and localmesos) cannot mount volumes into a plain command task, so
# these notebooks get none; notebook_dir is the user's directory on the host itself.
NO_VOLUMES = "c.MesosSpawner.volumes = []"


@pytest.fixture
async def hub(hub_factory, cluster, homes, test_users):
    hub = await hub_factory(mesos_config(cluster.url, homes, NO_VOLUMES)).launch()
    for user in test_users:
        await hub.create_user(user.name)
    return hub


def metric(text: str, name: str) -> float:
    """The value of one sample in Prometheus text format."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


@pytest.mark.e2e
async def test_default_profile_runs_on_plain_agent_as_the_user(hub, cluster, test_users, homes):
    user = test_users[0]
    state = await start_ready(hub, user.name)
    code, status = await hub.get_through_proxy(user.name, path="api/status")
    assert code == 200, status

    master = await master_state(cluster.url)
    task = tasks_by_id(master)[state["task_id"]]
    assert task["state"] == "TASK_RUNNING"
    assert agent_of(master, task)["hostname"] == "cpu-1"
    labels = {lab["key"]: lab["value"] for lab in task.get("labels", [])}
    assert labels.get("jupyterhub.user") and labels.get("jupyterhub.hub")
    assert hub.admin_token not in json.dumps(task)

    # The notebook process runs as the user's uid/gid, and what it writes into its
    # {username} directory belongs to the user on the host.
    assert proc_ids(state["task_id"]) == (user.uid, user.gid)
    await assert_notebook_writes_as_user(hub, user, homes, "result.txt")

    # The framework's Prometheus metrics are on the hub's /metrics.
    code, raw, _ = await hub._http.fetch(
        f"{hub.url}/hub/metrics", headers={"Authorization": f"token {hub.admin_token}"}
    )
    metrics = raw.decode()
    assert code == 200
    assert metric(metrics, "mesosspawner_offers_received_total") >= 1
    assert metric(metrics, "mesosspawner_launch_seconds_count") == 1
    assert metric(metrics, 'mesosspawner_task_updates_total{state="TASK_RUNNING"}') >= 1
    assert metric(metrics, "mesosspawner_pending_requests") == 0

    # No token in task names or labels, nor in the hub log.
    env = task_env(state["task_id"])
    token = env["JUPYTERHUB_API_TOKEN"]
    assert token not in json.dumps(master)
    assert token not in hub.log_text()


@pytest.mark.e2e
async def test_gpu_profile_gets_one_gpu_on_the_gpu_agent(hub, cluster, test_users):
    user = test_users[1]
    state = await start_ready(hub, user.name, options={"profile": "gpu"})
    master = await master_state(cluster.url)
    task = tasks_by_id(master)[state["task_id"]]
    assert task["resources"]["gpus"] == 1
    gpu_agent = agent_of(master, task)
    assert gpu_agent["hostname"] == "gpu-1"
    assert gpu_agent["used_resources"]["gpus"] == 1  # the master accounts the device to it
    # Device visibility is the agent's business (real Mesos: device cgroups, no env vars); the
    # spawner must only not hide GPUs from a GPU notebook as it does for CPU-only ones.
    env = task_env(state["task_id"])
    assert env.get("NVIDIA_VISIBLE_DEVICES") != "void"


@pytest.mark.e2e
async def test_spark_profile_uses_spark_role_and_its_own_ports(hub, cluster, test_users):
    user = test_users[2]
    state = await start_ready(hub, user.name, options={"profile": "spark"})
    master = await master_state(cluster.url)
    task = tasks_by_id(master)[state["task_id"]]
    # 2 cpus / 1 GB only exist in role spark on spark-1 (its unreserved part is 0.5 cpus).
    assert task["role"] == "spark"
    assert agent_of(master, task)["hostname"] == "spark-1"
    assert task["resources"]["cpus"] == 2

    env = task_env(state["task_id"])
    assert env["SPARK_MASTER"] == env["MASTER"] == "mesos://zk://127.0.0.1:2181/mesos"
    opts = env["PYSPARK_SUBMIT_ARGS"]
    assert "spark.mesos.executor.docker.image=registry.example/spark-executor:3.5.3" in opts
    assert "spark.mesos.role=spark" in opts

    def conf(key: str) -> str:
        return opts.split(f"{key}=", 1)[1].split()[0].strip("'\"")

    held = task["resources"]["ports"].strip("[]").split(",")
    ports_held = set()
    for part in held:
        lo, hi = (int(x) for x in part.strip().split("-"))
        ports_held.update(range(lo, hi + 1))
    used = [
        int(conf("spark.driver.port")),
        int(conf("spark.driver.blockManager.port")),  # never spark.blockManager.port
        int(conf("spark.ui.port")),
        int(env["MESOSSPAWNER_DRIVER_LIBPROCESS_PORT"]),  # the driver's; not LIBPROCESS_PORT
        state["host_port"],
    ]
    assert len(set(used)) == 5
    assert set(used) <= ports_held
    assert conf("spark.driver.host") == env["MESOSSPAWNER_DRIVER_LIBPROCESS_IP"]


@pytest.mark.e2e
async def test_named_servers_side_by_side_and_stop_kills_task(hub, cluster, test_users):
    user = test_users[0]
    first = await start_ready(hub, user.name, "one")
    second = await start_ready(hub, user.name, "two")
    assert first["task_id"] != second["task_id"]
    for name in ("one", "two"):
        code, _ = await hub.get_through_proxy(user.name, name, path="api/status")
        assert code == 200

    await hub.stop_server(user.name, "one")
    tasks = tasks_by_id(await master_state(cluster.url))
    assert tasks[first["task_id"]]["state"] == "TASK_KILLED"
    assert tasks[second["task_id"]]["state"] == "TASK_RUNNING"
    await hub.stop_server(user.name, "two")
    tasks = tasks_by_id(await master_state(cluster.url))
    assert all(t["state"] != "TASK_RUNNING" for t in tasks.values())


@pytest.mark.e2e
async def test_hub_restart_keeps_notebooks_running(hub, cluster, test_users):
    states = {}
    for user in test_users:
        states[user.name] = await start_ready(hub, user.name)
    before = await master_state(cluster.url)
    framework_id = before["frameworks"][0]["id"]
    assert len(tasks_by_id(before)) == 3

    hub.kill()  # SIGKILL: no chance to clean up
    await hub.restart()

    for user in test_users:
        server = await hub.wait_server_ready(user.name, timeout=30)
        assert server["ready"]
        code, _ = await hub.get_through_proxy(user.name, path="api/status")
        assert code == 200
    after = await master_state(cluster.url)
    assert [f["id"] for f in after["frameworks"]] == [framework_id]
    assert after["frameworks"][0]["active"] is True
    tasks = tasks_by_id(after)
    assert set(tasks) == {s["task_id"] for s in states.values()}  # nothing relaunched
    assert all(t["state"] == "TASK_RUNNING" for t in tasks.values())


@pytest.mark.e2e
@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"profile": "nope"}, "nope"),
        ({"profile": 3}, "profile"),
        ({"profile": "cpu", "gpus": 8}, "gpus"),
        ({"image": "evil"}, "image"),
    ],
)
async def test_bad_options_rejected_with_400_and_nothing_launched(
    hub, cluster, test_users, options, fragment
):
    user = test_users[0]
    code, body = await hub.start_server_response(user.name, options=options)
    assert code == 400, body
    assert fragment in json.dumps(body)
    master = await master_state(cluster.url)
    assert tasks_by_id(master) == {}


@pytest.mark.e2e
async def test_plain_notebook_volume_is_mounted_or_refused_never_ignored(
    hub_factory, cluster, homes, test_users
):
    # The notebook works in the volume's container path, so a write reaches the user's host
    # directory only through the mount; a default agent cannot mount into a plain command task.
    extra = f"""
c.MesosSpawner.notebook_dir = "/work"
c.MesosSpawner.volumes = [
    {{"host_path": {str(homes)!r} + "/{{username}}", "container_path": "/work", "mode": "RW"}}
]
"""
    hub = await hub_factory(mesos_config(cluster.url, homes, extra)).launch()
    user = test_users[0]
    await hub.create_user(user.name)
    code, body = await hub.start_server_response(user.name)
    if code in (201, 202):
        try:
            await hub.wait_server_ready(user.name, timeout=30)
        except Exception:  # noqa: BLE001 - the refusal may come after the POST returned
            pass
    message = json.dumps(body) + hub.log_text()
    assert "Volumes in ContainerInfo is not supported" in message, message[-3000:]
    tasks = tasks_by_id(await master_state(cluster.url))
    assert all(t["state"] != "TASK_RUNNING" for t in tasks.values())
