"""The hub on a SECURE real Mesos 1.11 cluster, and what someone on a notebook can try there.

Secure mode (``clusters("real", ..., secure=True)``, mesosspawner/testing/mesos_security.py) is
what docs/admin-guide.md "Hardening a real cluster" says to set: framework, operator and agent
authentication, ACLs (``permissive: false``; nobody runs tasks as root; only the operator tears
down, reads agents and sandboxes) and the masters' ZooKeeper digest. The hub authenticates as
``hub`` with its secret in a file. The attacker holds the ``spark`` principal's secret (people
get it for their Spark drivers), or an ``intruder``'s with no rights, or nothing. Every refusal
is shown next to its positive control: the same request with the right credentials succeeds.
"""

from __future__ import annotations

import json

from tests.services import intruders
from tests.services.cluster import AgentSpec, port_block
from tests.services.e2e import secure_mesos_config, start_ready, user_tasks, wait_for

_BASE = port_block()
AGENTS = (
    AgentSpec("cpu-1", f"cpus:2;mem:4096;disk:10000;ports:[{_BASE}-{_BASE + 29}]", "rack:r1"),
    AgentSpec(
        "spark-1",
        f"cpus(spark):2;mem(spark):2048;cpus:0.5;mem:512;disk:10000;"
        f"ports:[{_BASE + 30}-{_BASE + 59}]",
        "rack:r2;spark_cluster:prod",
    ),
)


def hub_config(cluster, homes, extra: str = "") -> str:
    return secure_mesos_config(cluster, homes, "c.MesosSpawner.poll_interval = 1\n" + extra)


def assert_secret_kept(hub, cluster, state: dict) -> None:
    """Neither the hub's secret nor the ZooKeeper digest is in the hub's log, its framework id
    file or anything the master shows of the hub's framework and tasks."""
    security = cluster.security
    id_file = (hub.workdir / "mesosspawner-framework.json").read_text()
    assert json.loads(id_file)["master"].startswith("zk://***@")
    shown = hub.log_text() + json.dumps(state) + id_file
    for secret in (security.hub.secret, security.zk.secret):
        assert secret not in shown


async def test_secure_cluster_spawn_restart_and_failover(
    real_mesos_home, clusters, hub_factory, homes, new_user, zookeeper, unique_zk_path
):
    cluster = clusters("real", AGENTS, zk=zookeeper.url(unique_zk_path), masters=2, secure=True)
    assert "@" in cluster.url  # the hub finds the leader with the masters' digest URL
    hub = await hub_factory(hub_config(cluster, homes)).launch()
    first, second = (await new_user()).name, (await new_user()).name
    for name in (first, second):
        await hub.create_user(name)

    # CPU: a notebook starts and answers through the proxy.
    task_id = (await start_ready(hub, first))["task_id"]
    code, _ = await hub.get_through_proxy(first)
    assert code == 200
    leader = await cluster.leader_url()
    state = await cluster.state(leader)
    (framework,) = state["frameworks"]
    assert framework["principal"] == "hub" and framework["active"]
    assert framework["tasks"][0]["id"] == task_id

    # Restart: the hub re-subscribes as the same framework (with its credentials), and the
    # notebook is still there.
    await hub.restart()
    await hub.wait_server_ready(first, timeout=30)

    async def resubscribed():
        state = await cluster.state(leader)
        fws = [f for f in state["frameworks"] if f["id"] == framework["id"]]
        return state if fws and fws[0]["active"] and len(state["frameworks"]) == 1 else None

    await wait_for(resubscribed, 30, "the restarted hub to re-subscribe as the same framework")
    assert (await cluster.task_states(leader))[task_id] == "TASK_RUNNING"

    # Failover: the leader dies; the hub follows the new one through ZooKeeper, authenticates
    # there, keeps the notebook, and launches a new one on it.
    await cluster.kill_leader()
    (standby,) = [url for url in cluster.master_urls if url != leader]

    async def followed():
        if await cluster.leader_url() != standby:
            return None
        state = await cluster.state(standby)
        fws = [f for f in state["frameworks"] if f["id"] == framework["id"]]
        tasks = await cluster.task_states(standby)
        return state if fws and fws[0]["active"] and tasks.get(task_id) else None

    await wait_for(followed, 90, "the hub to re-subscribe to the new leader")
    second_task = (await start_ready(hub, second))["task_id"]
    for name in (first, second):
        code, _ = await hub.get_through_proxy(name)
        assert code == 200
    tasks = await cluster.tasks(standby)
    assert {tasks[t]["state"] for t in (task_id, second_task)} == {"TASK_RUNNING"}
    assert tasks[second_task]["framework"]["id"] == framework["id"]
    # The hub read the new leader with its credentials (capacity, its tasks): no refusal.
    assert "answered 401" not in hub.log_text() and "answered 403" not in hub.log_text()
    assert_secret_kept(hub, cluster, await cluster.state(standby))


async def test_attacks_from_a_notebook_are_refused_and_the_hubs_notebooks_untouched(
    real_mesos_home, clusters, hub_factory, homes, user
):
    cluster = clusters("real", AGENTS, secure=True)
    security = cluster.security
    operator, spark = security.operator.auth, security.spark.auth
    intruder, hub_principal = security.intruder.auth, security.hub.auth
    master = cluster.master_url
    hub = await hub_factory(hub_config(cluster, homes)).launch()
    await hub.create_user(user.name)
    task_id = (await start_ready(hub, user.name))["task_id"]
    state = await cluster.state()
    (hub_framework,) = state["frameworks"]
    framework_id = hub_framework["id"]
    hostname = next(
        a["hostname"] for a in state["slaves"] if a["id"] == hub_framework["tasks"][0]["slave_id"]
    )
    agent = cluster.agent_url(hostname)
    seen: dict[str, intruders.Outcome] = {}

    # Register a framework: anonymous, a principal without rights, the Spark principal asking
    # for a role it does not have. Control: the Spark principal with its own role.
    seen["subscribe anonymous"] = await intruders.anonymous_subscribe(master)
    for name, auth, roles in (
        ("intruder", intruder, ("*",)),
        ("spark, role *", spark, ("*",)),
        ("spark as principal hub", spark, ("spark",)),
    ):
        probe = intruders.ProbeFramework(
            cluster.url,
            auth,
            roles,
            name=f"probe-{name}",
            principal="hub" if "as principal hub" in name else None,
        )
        seen[f"subscribe {name}"] = await probe.subscribe()
        await probe.stop()
    assert seen["subscribe anonymous"].code == 401
    for name in ("intruder", "spark, role *"):
        assert seen[f"subscribe {name}"].detail.startswith("ERROR Not authorized to register")
    assert seen["subscribe spark as principal hub"].code == 400
    assert "does not match principal 'hub'" in seen["subscribe spark as principal hub"].detail

    # Take the hub's framework over: SUBSCRIBE with its id under another principal.
    takeover = intruders.ProbeFramework(
        cluster.url, spark, ("spark",), name="takeover", framework_id=framework_id
    )
    seen["subscribe as the hub's framework, spark"] = await takeover.subscribe()
    await takeover.stop()
    takeover_seen = seen["subscribe as the hub's framework, spark"].detail
    assert takeover_seen == "ERROR Changing framework's principal is not allowed.", takeover_seen

    # Launch as root: refused for every principal that may launch at all; as nobody: runs.
    runners = {}
    for name, auth, roles in (("spark", spark, ("spark",)), ("hub", hub_principal, ("*",))):
        probe = intruders.ProbeFramework(cluster.url, auth, roles, name=f"runner-{name}")
        control = await probe.subscribe()
        assert control.detail.startswith("SUBSCRIBED"), control  # positive control
        seen[f"launch as root, {name}"] = await probe.launch_as("root")
        seen[f"launch as nobody, {name} (control)"] = await probe.launch_as("nobody")
        runners[name] = probe
    for name in ("spark", "hub"):
        root = seen[f"launch as root, {name}"].detail
        assert root.startswith("TASK_ERROR") and "under user 'root'" in root, root
        assert seen[f"launch as nobody, {name} (control)"].detail == "TASK_RUNNING"

    # TEARDOWN the hub's framework: the operator endpoint, the operator API, a scheduler call.
    for who, auth in (("anonymous", None), ("spark", spark), ("intruder", intruder)):
        seen[f"/master/teardown, {who}"] = await intruders.teardown_endpoint(
            master, framework_id, auth
        )
        seen[f"operator API TEARDOWN, {who}"] = await intruders.teardown_operator_api(
            master, framework_id, auth
        )
        seen[f"scheduler TEARDOWN, {who}"] = await intruders.teardown_scheduler_call(
            master, framework_id, auth
        )
    for who, code in (("anonymous", 401), ("spark", 403), ("intruder", 403)):
        assert seen[f"/master/teardown, {who}"].code == code
        assert seen[f"operator API TEARDOWN, {who}"].code == code
        assert seen[f"scheduler TEARDOWN, {who}"].code == (401 if who == "anonymous" else 400)
    assert "does not match principal 'hub'" in seen["scheduler TEARDOWN, spark"].detail
    # Controls: the operator tears down the probe frameworks, one way each; the Spark
    # principal tears its own down with its scheduler stream.
    seen["/master/teardown, operator (control)"] = await intruders.teardown_endpoint(
        master, runners["hub"].client.framework_id, operator
    )
    spare = intruders.ProbeFramework(cluster.url, spark, ("spark",), name="spare")
    await spare.subscribe()
    seen["operator API TEARDOWN, operator (control)"] = await intruders.teardown_operator_api(
        master, spare.client.framework_id, operator
    )
    await spare.stop()
    await runners["spark"].teardown()  # raises unless the master accepts it (202)
    seen["scheduler TEARDOWN of its own framework, spark (control)"] = intruders.Outcome(202)
    await runners["hub"].stop()
    assert seen["/master/teardown, operator (control)"].code == 200
    assert seen["operator API TEARDOWN, operator (control)"].code == 200

    # Read the agent's /state and the notebook's sandbox.
    sandbox = intruders.sandbox_path(framework_id, task_id)
    for who, auth in (("anonymous", None), ("spark", spark), ("hub", hub_principal)):
        seen[f"agent /state, {who}"] = await intruders.http("GET", f"{agent}/state", auth)
        seen[f"sandbox stdout, {who}"] = await intruders.download(agent, f"{sandbox}/stdout", auth)
        seen[f"sandbox browse, {who}"] = await intruders.http(
            "GET", f"{agent}/files/browse?path={sandbox}", auth
        )
    seen["agent /state, operator (control)"] = await intruders.http(
        "GET", f"{agent}/state", operator
    )
    seen["sandbox stderr, operator (control)"] = await intruders.download(
        agent, f"{sandbox}/stderr", operator
    )
    for who in ("anonymous", "spark", "hub"):
        for what in ("agent /state", "sandbox stdout", "sandbox browse"):
            assert seen[f"{what}, {who}"].code == 401, (what, who, seen[f"{what}, {who}"])
    assert seen["agent /state, operator (control)"].code == 200
    assert framework_id in seen["agent /state, operator (control)"].detail
    assert seen["sandbox stderr, operator (control)"].code == 200
    # The master's view: anonymous callers get nothing, the Spark principal not the hub's.
    seen["/master/state, anonymous"] = await intruders.http("GET", f"{master}/master/state")
    seen["/master/state, spark"] = await intruders.http("GET", f"{master}/master/state", spark)
    assert seen["/master/state, anonymous"].code == 401
    assert seen["/master/state, spark"].code == 200
    assert framework_id not in seen["/master/state, spark"].detail

    # The hub's notebook is untouched: same framework, active, task running, server answering.
    after = await cluster.state()
    (kept,) = [f for f in after["frameworks"] if f["id"] == framework_id]
    assert kept["active"]
    tasks = await cluster.tasks()
    assert [t["state"] for t in user_tasks(tasks, user.name).values()] == ["TASK_RUNNING"]
    code, _ = await hub.get_through_proxy(user.name)
    assert code == 200
    print("\nattacks on a secure real Mesos 1.11 master:")
    for what, outcome in seen.items():
        print(f"  {what}: {outcome}")
