"""MesosSpawner end to end: real JupyterHub + proxy + real jupyterhub-singleuser, on localmesos
and on REAL Mesos 1.11.0 (``mesos_kind``), judged by the master's own /master/state.

The cluster has a plain agent, a GPU agent (2 GPUs: accounted, as real Mesos does without the
nvidia isolator) and an agent whose cpus/mem are reserved for role ``spark``; notebooks are plain
command tasks (the Mesos containerizer, no image) that the agent runs as the person's own uid/gid.
One hub and cluster per kind serve the module; each test has people of its own.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tests.services.e2e import (
    agent_of,
    assert_notebook_writes_as_user,
    labels_of,
    mesos_config,
    proc_ids,
    server_gone,
    start_ready,
    task_env,
    user_tasks,
    wait_for,
)


@pytest.fixture(scope="module")
def cluster(mesos_kind, module_clusters):
    return module_clusters(mesos_kind)


# Profiles no agent can ever hold, and one whose host volume a default agent refuses.
PROFILES = """
c.MesosSpawner.profile_list += [
    {{"display_name": "Huge", "slug": "huge", "mesosspawner_override": {{"cpu_limit": 64}}}},
    {{"display_name": "4 GPUs", "slug": "four-gpus", "mesosspawner_override": {{"gpus": 4}}}},
    {{"display_name": "Volume", "slug": "volume", "mesosspawner_override": {{"volumes": [
        {{"host_path": {homes!r} + "/{{username}}", "container_path": "/work", "mode": "RW"}}
    ]}}}},
]
"""


@pytest.fixture(scope="module")
def hub(cluster, module_hub_factory, homes):
    extra = PROFILES.format(homes=str(homes))
    return module_hub_factory(mesos_config(cluster.url, homes, extra)).launch_blocking()


def metric(text: str, name: str) -> float:
    """The value of one sample in Prometheus text format."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def ports_of(task: dict) -> set[int]:
    held = set()
    for part in task["resources"]["ports"].strip("[]").split(","):
        lo, hi = (int(x) for x in part.strip().split("-"))
        held.update(range(lo, hi + 1))
    return held


async def test_default_profile_runs_on_plain_agent_as_the_user(hub, cluster, user, homes):
    state = await start_ready(hub, user.name)
    code, status = await hub.get_through_proxy(user.name, path="api/status")
    assert code == 200, status

    master = await cluster.state()
    task = (await cluster.tasks())[state["task_id"]]
    assert task["state"] == "TASK_RUNNING"
    assert agent_of(master, task)["hostname"] == "cpu-1"
    assert task["role"] == "*"
    assert state["host_port"] in ports_of(task)
    labels = labels_of(task)
    assert labels.get("jupyterhub.user") and labels.get("jupyterhub.hub")
    assert hub.admin_token not in json.dumps(task)

    # The agent switched to the user (command.user): the notebook process runs as the user's
    # uid/gid, and what it writes into its {username} directory belongs to the user.
    if cluster.kind == "real":  # localmesos's state.json leaves out a task's user
        assert task["user"] == user.name
    assert proc_ids(state["task_id"]) == (user.uid, user.gid)
    await assert_notebook_writes_as_user(hub, user, homes, "result.txt")

    # No token in task names or labels, nor in the hub log.
    token = task_env(state["task_id"])["JUPYTERHUB_API_TOKEN"]
    assert token not in json.dumps(master)
    assert token not in hub.log_text()


async def test_framework_metrics_are_on_the_hubs_metrics_page(hub, user):
    await start_ready(hub, user.name)
    code, raw, _ = await hub._http.fetch(
        f"{hub.url}/hub/metrics", headers={"Authorization": f"token {hub.admin_token}"}
    )
    metrics = raw.decode()
    assert code == 200
    assert metric(metrics, "mesosspawner_offers_received_total") >= 1
    assert metric(metrics, "mesosspawner_launch_seconds_count") >= 1
    assert metric(metrics, 'mesosspawner_task_updates_total{state="TASK_RUNNING"}') >= 1
    assert metric(metrics, "mesosspawner_pending_requests") == 0


async def test_gpu_profile_gets_one_gpu_on_the_gpu_agent(hub, cluster, user):
    state = await start_ready(hub, user.name, options={"profile": "gpu"})
    master = await cluster.state()
    task = (await cluster.tasks())[state["task_id"]]
    assert task["resources"]["gpus"] == 1
    gpu_agent = agent_of(master, task)
    assert gpu_agent["hostname"] == "gpu-1"
    assert gpu_agent["used_resources"]["gpus"] >= 1  # the master accounts the device to it
    # Device visibility is the agent's business (real Mesos: device cgroups, no env vars); the
    # spawner must only not hide GPUs from a GPU notebook as it does for CPU-only ones.
    env = task_env(state["task_id"])
    assert env.get("NVIDIA_VISIBLE_DEVICES") != "void"


async def test_spark_profile_uses_spark_role_and_its_own_ports(hub, cluster, user):
    state = await start_ready(hub, user.name, options={"profile": "spark"})
    master = await cluster.state()
    task = (await cluster.tasks())[state["task_id"]]
    spark_agent = agent_of(master, task)
    # 2 cpus / 1 GB only exist in role spark on spark-1 (its unreserved part is 0.5 cpus).
    assert task["role"] == "spark"
    assert spark_agent["hostname"] == "spark-1"
    assert task["resources"]["cpus"] == 2
    assert "spark" in task["framework"]["roles"]
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


async def test_named_servers_side_by_side_and_stop_kills_task(hub, cluster, user):
    first = await start_ready(hub, user.name, "one")
    second = await start_ready(hub, user.name, "two")
    assert first["task_id"] != second["task_id"]
    for name in ("one", "two"):
        code, _ = await hub.get_through_proxy(user.name, name, path="api/status")
        assert code == 200

    await hub.stop_server(user.name, "one")
    tasks = await cluster.tasks()
    assert tasks[first["task_id"]]["state"] == "TASK_KILLED"
    assert tasks[second["task_id"]]["state"] == "TASK_RUNNING"
    await hub.stop_server(user.name, "two")
    mine = user_tasks(await cluster.tasks(), user.name)
    assert set(mine) == {first["task_id"], second["task_id"]}
    assert all(t["state"] == "TASK_KILLED" for t in mine.values())


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
    hub, cluster, user, options, fragment
):
    code, body = await hub.start_server_response(user.name, options=options)
    assert code == 400, body
    assert fragment in json.dumps(body)
    assert user_tasks(await cluster.tasks(), user.name) == {}


async def spawn_fails_fast(hub, user: str, profile: str) -> tuple[float, str]:
    """Ask for ``profile``; returns how long the spawn took to fail and what the person was
    shown: the REST answer when the hub gave up before answering, else the last event of the
    progress stream (what the spawn-pending page shows)."""
    started = time.monotonic()
    code, body = await hub.start_server_response(user, options={"profile": profile})
    if code in (201, 202):  # the failure may land just after the POST returned
        await wait_for(lambda: server_gone(hub, user), 10, "the failed server to disappear")
        events = await hub.progress(user)
        assert events and events[-1].get("failed"), events
        shown = events[-1]["message"]
    else:
        assert code >= 400, body
        shown = body.get("message", "") if isinstance(body, dict) else str(body)
    return time.monotonic() - started, shown


@pytest.mark.parametrize(
    "profile, missing",
    [("four-gpus", "4 GPUs"), ("huge", "64 cpus")],
)
async def test_requests_that_never_fit_fail_within_5s_naming_what_is_missing(
    hub, cluster, user, profile, missing
):
    elapsed, shown = await spawn_fails_fast(hub, user.name, profile)
    assert elapsed <= 5, f"{profile}: took {elapsed:.1f}s to fail"
    assert "never start on this cluster" in shown, shown
    assert missing in shown, shown
    assert user_tasks(await cluster.tasks(), user.name) == {}  # nothing launched


async def test_volume_on_a_plain_notebook_is_refused_naming_the_agents_reason(hub, cluster, user):
    """A host volume on a task without an image fits every offer, but a default agent (posix
    filesystem isolator) cannot mount it: launched, refused by the agent, and the person is
    told the agent's reason at once, never a notebook without its volume."""
    elapsed, shown = await spawn_fails_fast(hub, user.name, "volume")
    assert elapsed <= 5, f"the refused volume took {elapsed:.1f}s to fail"
    assert "Volumes in ContainerInfo is not supported" in shown, shown
    mine = user_tasks(await cluster.tasks(), user.name)
    assert {t["state"] for t in mine.values()} == {"TASK_FAILED"}, mine


async def test_hub_restart_keeps_notebooks_running(hub, cluster, new_user):
    """Last in the module: it SIGKILLs the shared hub and brings it back with the same database
    and framework id; nothing is relaunched and nothing lost."""
    cpu_user, spark_user = await new_user(), await new_user()
    cpu, spark = await asyncio.gather(
        start_ready(hub, cpu_user.name),
        start_ready(hub, spark_user.name, options={"profile": "spark"}),
    )
    ours = {cpu["task_id"], spark["task_id"]}
    before = await cluster.state()
    (framework,) = [f for f in before["frameworks"] if ours <= {t["id"] for t in f["tasks"]}]

    hub.kill()  # SIGKILL: no chance to clean up
    await hub.restart()

    for user in (cpu_user, spark_user):
        server = await hub.wait_server_ready(user.name, timeout=30)
        assert server["ready"]
        code, _ = await hub.get_through_proxy(user.name, path="api/status")
        assert code == 200
    after = await cluster.state()
    (active,) = [f for f in after["frameworks"] if f["active"]]
    assert active["id"] == framework["id"]
    tasks = await cluster.tasks()
    for user in (cpu_user, spark_user):  # 0 relaunched
        assert set(user_tasks(tasks, user.name)) <= ours
    for task_id in ours:  # 0 lost: RUNNING throughout, no other state since
        assert tasks[task_id]["state"] == "TASK_RUNNING"
        assert [st["state"] for st in tasks[task_id]["statuses"]][-1] == "TASK_RUNNING"

    # The restarted hub still owns its notebooks: stopping one kills its task.
    await hub.stop_server(cpu_user.name)
    tasks = await cluster.tasks()
    assert tasks[cpu["task_id"]]["state"] == "TASK_KILLED"
    assert tasks[spark["task_id"]]["state"] == "TASK_RUNNING"
