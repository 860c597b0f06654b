"""Master failover through a real ZooKeeper, with pymesos as the framework.

Two masters share one ``zk://`` path and an agent runs as its own process, as in a real
cluster: two localmesos masters and a localmesos agent process, or (``-k real``) two real
Mesos 1.11.0 masters (replicated log, quorum 1) and a real agent. When the leading master
crashes, the other takes over; pymesos, which finds the leader through ZooKeeper on its own,
re-subscribes under the same framework id, and the agent re-registers with the task still
running.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest
from kazoo.client import KazooClient

from tests.services.cluster import AgentSpec
from tests.services.pymesos_peer import (
    Peer,
    command_task,
    framework_info,
    get_json,
    run_driver,
    wait_until,
)

pytestmark = pytest.mark.timeout(180)

AGENT = "failover-1"
# As real Mesos's MASTER_TEST_FLAGS: a crashed leader's znode goes after 5 s, not 10.
ZK_SESSION = ("--zk-session-timeout", "5")


def leader_port(zookeeper, path: str) -> int | None:
    """The port in the MasterInfo of the lowest ``json.info_`` znode, as Mesos clients read it."""
    client = KazooClient(hosts=zookeeper.hosts, timeout=10)
    client.start(timeout=10)
    try:
        children = [c for c in client.get_children(path) if c.startswith("json.info_")]
        if not children:
            return None
        data, _ = client.get(f"{path}/{min(children)}")
        return json.loads(data)["address"]["port"]
    finally:
        client.stop()
        client.close()


def agents_of(master) -> list[str]:
    return [a["hostname"] for a in get_json(f"{master.url}/master/state")["slaves"]]


def task_states(master, framework_id: str) -> dict[str, str]:
    state = get_json(f"{master.url}/master/state")
    return {
        t["id"]: t["state"]
        for f in state["frameworks"]
        if f["id"] == framework_id
        for t in f["tasks"]
    }


@dataclass(frozen=True)
class Master:
    url: str
    port: int


@pytest.fixture
def masters(mesos_kind, clusters, zookeeper, unique_zk_path):
    """(zk URL, cluster, first leader, standby): two masters on one ZooKeeper path and an
    agent process that follows the leader."""
    zk_url = zookeeper.url(unique_zk_path)
    agents = (AgentSpec(AGENT, "cpus:2;mem:1024;disk:1000;ports:[41300-41399]"),)
    cluster = clusters(mesos_kind, agents, zk=zk_url, masters=2, localmesos_args=ZK_SESSION)
    port = wait_until("a master to lead", lambda: leader_port(zookeeper, unique_zk_path))
    first, second = sorted(
        (Master(url, int(url.rsplit(":", 1)[1])) for url in cluster.master_urls),
        key=lambda m: m.port != port,
    )
    wait_until("the agent to register with the leader", lambda: AGENT in agents_of(first))
    return zk_url, cluster, first, second


def test_framework_reregisters_with_the_new_leader_after_a_crash(
    masters, zookeeper, unique_zk_path
):
    zk_url, cluster, first, second = masters
    assert leader_port(zookeeper, unique_zk_path) == first.port
    peer = Peer()
    task_id = f"failover-{uuid.uuid4().hex[:8]}"
    # checkpoint: the agent keeps the task through the failover (real Mesos removes the
    # tasks of frameworks that do not checkpoint when an agent's connection breaks).
    framework = framework_info("failover", failover_timeout=600.0, checkpoint=True)
    with run_driver(peer, framework, zk_url, failover=True) as driver:
        registered = peer.next("registered", timeout=30).data
        framework_id = registered["framework_id"]["value"]
        assert registered["master_info"]["port"] == first.port
        offer = peer.offers_from({AGENT})[AGENT]
        driver.launchTasks(offer["id"], [command_task(offer, task_id, "exec sleep 120")])
        peer.update_for(task_id, "TASK_RUNNING")

        cluster.kill_master(first.url)

        reregistered = peer.next("reregistered", timeout=90)
        assert reregistered.data["master_info"]["port"] == second.port
        assert driver.framework_id == framework_id
        assert leader_port(zookeeper, unique_zk_path) == second.port
        wait_until(
            "the agent to re-register with its running task",
            lambda: task_states(second, framework_id) == {task_id: "TASK_RUNNING"},
            timeout=60,
        )

        driver.reconcileTasks([{"task_id": {"value": task_id}}])
        peer.update_for(
            task_id,
            "TASK_RUNNING",
            lambda s: s.get("reason") == "REASON_RECONCILIATION",
            timeout=30,
        )
        # Offers the crashed master made are void; the new leader must make its own.
        offered = peer.next("offer", lambda o: o["hostname"] == AGENT, timeout=30)
        while offered.at < reregistered.at:
            offered = peer.next("offer", lambda o: o["hostname"] == AGENT, timeout=30)

        driver.killTask({"value": task_id})
        peer.update_for(task_id, "TASK_KILLED", timeout=30)
