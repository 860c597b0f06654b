"""pymesos, a scheduler driver written for real Mesos, works against localmesos unchanged.

Every test runs pymesos's own MesosSchedulerDriver (its thread, its HTTP and RecordIO handling)
against a localmesos master process started from its command line, and against real Mesos
1.11.0 with the same agents (``-k real``).
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.services.cluster import AgentSpec
from tests.services.pymesos_peer import (
    Peer,
    command_task,
    framework_info,
    get_json,
    reserved_role,
    run_driver,
    scalar,
    start_localmesos,
    wait_until,
)

pytestmark = pytest.mark.timeout(120)

PLAIN, GPU, SPARK = "plain-1", "gpu-1", "spark-1"
ALL = {PLAIN, GPU, SPARK}
AGENTS = (
    AgentSpec(PLAIN, "cpus:2;mem:2048;disk:1000;ports:[41000-41099]", "rack:r1"),
    AgentSpec(
        GPU, "cpus:2;mem:2048;disk:1000;gpus:2;ports:[41100-41199]", "rack:r1;gpu_model:test"
    ),
    AgentSpec(
        SPARK,
        "cpus(spark):4;mem(spark):4096;cpus:1;mem:512;disk:1000;ports:[41200-41299]",
        "rack:r2;spark_cluster:test",
    ),
)


@pytest.fixture(scope="module")
def master(mesos_kind, module_clusters):
    """The master every test of the module shares: localmesos's CLI or real Mesos."""
    return module_clusters(mesos_kind, AGENTS)


@pytest.fixture
def peer():
    return Peer()


def new_task_id() -> str:
    return f"pymesos-{uuid.uuid4().hex[:8]}"


def text_attribute(offer: dict, name: str) -> str | None:
    for attr in offer.get("attributes", []):
        if attr["name"] == name and attr["type"] == "TEXT":
            return attr["text"]["value"]
    return None


def test_subscribes_and_gets_a_framework_id(master, peer):
    with run_driver(peer, framework_info("subscribe"), master.address) as driver:
        registered = peer.next("registered").data
        framework_id = registered["framework_id"]["value"]
        assert framework_id
        assert driver.framework_id == framework_id
        assert registered["master_info"]["port"] == master.port
        frameworks = get_json(f"{master.url}/master/state")["frameworks"]
        assert framework_id in [f["id"] for f in frameworks]


def test_default_cluster_offers_every_agent(tmp_path, peer):
    lm = start_localmesos(["--port", "0"], tmp_path / "default.log")
    try:
        agents = {a["hostname"] for a in get_json(f"{lm.url}/master/state")["slaves"]}
        assert len(agents) == 3
        with run_driver(peer, framework_info("default-cluster"), lm.address):
            offers = peer.offers_from(agents)
        assert [h for h, o in offers.items() if scalar(o, "gpus") >= 1]
    finally:
        lm.stop()


def test_offers_come_from_every_agent_with_its_resources_and_attributes(master, peer):
    with run_driver(peer, framework_info("offers"), master.address) as driver:
        framework_id = peer.next("registered").data["framework_id"]["value"]
        offers = peer.offers_from(ALL)
        assert driver.framework_id == framework_id
        # pymesos declares GPU_RESOURCES on its own (it read /version), so gpu-1 is offered too.
        assert {"type": "GPU_RESOURCES"} in driver.framework["capabilities"]

    for offer in offers.values():
        assert offer["framework_id"]["value"] == framework_id
        assert offer["url"]["address"]["ip"] == "127.0.0.1"
    assert scalar(offers[PLAIN], "cpus") == 2
    assert scalar(offers[PLAIN], "mem") == 2048
    assert scalar(offers[GPU], "gpus") == 2
    assert text_attribute(offers[GPU], "gpu_model") == "test"
    assert text_attribute(offers[SPARK], "spark_cluster") == "test"
    ports = [r for r in offers[PLAIN]["resources"] if r["name"] == "ports"]
    assert ports[0]["type"] == "RANGES"
    assert ports[0]["ranges"]["range"] == [{"begin": 41000, "end": 41099}]


def test_gpu_agent_is_withheld_from_a_framework_without_gpu_resources(master, peer):
    with run_driver(peer, framework_info("cpu-only"), master.address, gpu=False) as driver:
        assert "capabilities" not in driver.framework
        peer.offers_from(ALL - {GPU})
        # Two more allocation cycles at least: the GPU agent must never be offered.
        later = peer.drain(3.0)
    assert GPU not in {e.data["hostname"] for e in later if e.kind == "offer"}


FRAMEWORKS_IN_SPARK = {
    "legacy-role": {"role": "spark"},
    "multi-role": {"roles": ["spark"], "capabilities": [{"type": "MULTI_ROLE"}]},
    "refinement": {
        "roles": ["spark"],
        "capabilities": [{"type": "MULTI_ROLE"}, {"type": "RESERVATION_REFINEMENT"}],
    },
}


@pytest.mark.parametrize("form", sorted(FRAMEWORKS_IN_SPARK))
def test_spark_reservation_is_offered_only_to_role_spark(master, form):
    outsider = Peer()
    with run_driver(outsider, framework_info("outsider"), master.address):
        offer = outsider.offers_from({SPARK})[SPARK]
    assert scalar(offer, "cpus", role="spark") == 0
    assert scalar(offer, "cpus") == 1  # the agent's unreserved part only

    spark = Peer()
    with run_driver(spark, framework_info("spark", **FRAMEWORKS_IN_SPARK[form]), master.address):
        offer = spark.offers_from({SPARK})[SPARK]
    assert scalar(offer, "cpus", role="spark") == 4
    assert scalar(offer, "mem", role="spark") == 4096
    reserved = [r for r in offer["resources"] if reserved_role(r) == "spark"]
    if form == "refinement":
        assert all(r["reservations"][-1]["type"] == "STATIC" for r in reserved)
        assert not any("role" in r for r in reserved)
    else:
        assert all(r["role"] == "spark" for r in reserved)
    if form != "legacy-role":
        assert offer["allocation_info"] == {"role": "spark"}


def test_command_task_runs_and_is_killed(master, peer, tmp_path):
    task_id = new_task_id()
    marker = tmp_path / "started"
    with run_driver(peer, framework_info("launch"), master.address) as driver:
        offer = peer.offers_from({PLAIN})[PLAIN]
        command = f'echo "$MESOS_EXECUTOR_ID" > {marker} && exec sleep 60'
        driver.launchTasks(offer["id"], [command_task(offer, task_id, command)])

        running = peer.update_for(task_id, "TASK_RUNNING")
        assert running["agent_id"] == offer["agent_id"]
        assert "uuid" in running  # an agent's update, acknowledged by pymesos
        wait_until("the task's command to run", lambda: marker.read_text().strip() == task_id)
        state = get_json(f"{master.url}/master/state")
        (framework,) = [f for f in state["frameworks"] if f["id"] == driver.framework_id]
        assert [(t["id"], t["state"]) for t in framework["tasks"]] == [(task_id, "TASK_RUNNING")]

        driver.killTask({"value": task_id})
        peer.update_for(task_id, "TASK_KILLED")


def test_declined_agent_is_not_offered_again_before_refuse_seconds(master, peer):
    refuse = 3.0
    with run_driver(peer, framework_info("decline"), master.address) as driver:
        offer = peer.offers_from({PLAIN})[PLAIN]
        declined_at = time.monotonic()
        driver.declineOffer(offer["id"], filters={"refuse_seconds": refuse})
        again = peer.next("offer", lambda o: o["hostname"] == PLAIN, timeout=refuse + 15)
    assert again.data["id"] != offer["id"]
    assert again.at - declined_at >= refuse


def test_suppress_stops_offers_until_revive(master, peer):
    with run_driver(peer, framework_info("suppress"), master.address) as driver:
        offers = peer.offers_from(ALL)
        driver.suppressOffers()
        # Hand everything back without a filter: only the suppression keeps it from us now.
        driver.declineOffer([o["id"] for o in offers.values()], filters={"refuse_seconds": 0})
        quiet = peer.drain(3.0)
        assert [e.data["hostname"] for e in quiet if e.kind == "offer"] == []

        driver.reviveOffers()
        peer.offers_from(ALL)


def test_reconcile_explicit_implicit_and_unknown(master, peer):
    task_id = new_task_id()

    def reconciled(status: dict) -> bool:
        return status.get("reason") == "REASON_RECONCILIATION"

    with run_driver(peer, framework_info("reconcile"), master.address) as driver:
        offer = peer.offers_from({PLAIN})[PLAIN]
        driver.launchTasks(offer["id"], [command_task(offer, task_id, "exec sleep 60")])
        peer.update_for(task_id, "TASK_RUNNING")

        driver.reconcileTasks([{"task_id": {"value": task_id}}])
        explicit = peer.update_for(task_id, "TASK_RUNNING", reconciled)
        assert "uuid" not in explicit  # the master answers; nothing to acknowledge
        assert explicit["agent_id"] == offer["agent_id"]

        driver.reconcileTasks([])
        peer.update_for(task_id, "TASK_RUNNING", reconciled)

        driver.reconcileTasks([{"task_id": {"value": "no-such-task"}}])
        peer.update_for("no-such-task", "TASK_LOST", reconciled)
