"""MesosFramework driven through ``client_factory`` by a recording fake client: reconciliation
that waits for answers and asks again, and launch retries by reason and source."""

from __future__ import annotations

import asyncio

import pytest

from mesosspawner import placement, taskinfo
from mesosspawner.framework import (
    LaunchFailed,
    LaunchRequest,
    MesosFramework,
    TaskRecord,
)
from mesosspawner.mesos import events
from tests.services.fakes import RecordingClient, framework_config


def make_framework(**overrides) -> MesosFramework:
    overrides.setdefault("orphan_kill", False)
    config = framework_config(
        master="http://master.invalid:5050",
        name="fake",
        reconcile_retry_seconds=0.2,
        **overrides,
    )
    return MesosFramework(config, client_factory=RecordingClient)


async def subscribe(fw: MesosFramework) -> None:
    fw.client.subscribed = True
    await fw.subscribed(events.Subscribed(framework_id="fw-1"))


def status(task_id: str, state: str, **extra) -> events.TaskStatus:
    return events.TaskStatus(task_id=task_id, agent_id="a1", state=state, **extra)


def offers(*offer_list: dict) -> events.Offers:
    return events.parse({"type": "OFFERS", "offers": {"offers": list(offer_list)}})


OFFER = {
    "id": {"value": "o1"},
    "agent_id": {"value": "a1"},
    "hostname": "cpu-1",
    "url": {"address": {"ip": "127.0.0.1", "port": 5051}},
    "resources": [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 4096}},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31009}]}},
    ],
}


def request(key: str) -> LaunchRequest:
    spec = taskinfo.TaskSpec(
        task_id=f"jupyter.hub.{key}..n1", name=key, argv=("sleep", "9"), env={}
    )
    return LaunchRequest(needs=placement.Request(key=key, cpus=1, mem=128), spec=spec)


async def test_reconciled_only_after_every_known_task_is_answered():
    fw = make_framework()
    fw.track(TaskRecord("t1", agent_id="a1", state="TASK_RUNNING"))
    fw.track(TaskRecord("t2", agent_id="a1", state="TASK_RUNNING"))
    await subscribe(fw)
    assert fw.client.of("reconcile")[:2] == [[], [("t1", "a1"), ("t2", "a1")]]
    assert not fw.reconciled.is_set()
    await fw.update(status("t1", "TASK_RUNNING", reason="REASON_RECONCILIATION"))
    assert not fw.reconciled.is_set()
    await fw.update(status("t2", "TASK_RUNNING", reason="REASON_RECONCILIATION"))
    assert fw.reconciled.is_set()
    await fw.stop()


async def test_unanswered_reconciliation_is_asked_again():
    """After a master failover the new leader stays silent about agents it has not heard from
    yet: the framework asks again rather than believing the tasks are fine."""
    fw = make_framework()
    fw.track(TaskRecord("t1", agent_id="a1", state="TASK_RUNNING"))
    await subscribe(fw)
    await asyncio.sleep(0.5)
    asked = fw.client.of("reconcile")
    assert asked.count([("t1", "a1")]) >= 2
    await fw.update(status("t1", "TASK_RUNNING", reason="REASON_RECONCILIATION"))
    assert fw.reconciled.is_set()
    before = len(fw.client.of("reconcile"))
    await asyncio.sleep(0.6)
    assert len(fw.client.of("reconcile")) == before  # answered: no more asking until the period
    await fw.stop()


async def test_periodic_reconciliation_runs_every_interval():
    fw = make_framework(reconcile_interval=0.3)
    await subscribe(fw)
    await asyncio.sleep(1.0)
    implicit = [arg for arg in fw.client.of("reconcile") if arg == []]
    assert len(implicit) >= 3  # the one at subscription, then one per interval
    await fw.stop()


@pytest.mark.parametrize("source", ["SOURCE_MASTER", "SOURCE_AGENT"])
async def test_invalid_offer_drop_is_retried_from_master_or_agent(source):
    fw = make_framework()
    await subscribe(fw)
    req = request("alice")
    launching = asyncio.ensure_future(fw.launch(req))
    await asyncio.sleep(0)
    await fw.offers(offers(OFFER))
    first = fw.client.of("launch")[-1][0]
    await fw.update(
        status(first, "TASK_DROPPED", reason="REASON_INVALID_OFFERS", source=source, uuid="u")
    )
    assert "alice" in fw.pending  # queued again, not failed
    assert not launching.done()
    launching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await launching
    await fw.stop()


async def test_other_failures_are_not_retried():
    fw = make_framework()
    await subscribe(fw)
    launching = asyncio.ensure_future(fw.launch(request("bob")))
    await asyncio.sleep(0)
    await fw.offers(offers(OFFER))
    first = fw.client.of("launch")[-1][0]
    await fw.update(status(first, "TASK_FAILED", reason="REASON_COMMAND_EXECUTOR_FAILED"))
    with pytest.raises(LaunchFailed, match="command_executor_failed"):
        await launching
    await fw.stop()


@pytest.mark.parametrize(
    "reason, message",
    [
        # What Mesos 1.11's Docker containerizer sends when a pull outlasts the timeout.
        ("REASON_CONTAINER_LAUNCH_FAILED", "Failed to launch container: discarded; image pull"),
        ("REASON_CONTAINER_LAUNCH_FAILED", "Container destroyed while pulling image"),
        ("REASON_EXECUTOR_REGISTRATION_TIMEOUT", "Executor did not register within 1mins"),
    ],
)
async def test_launch_cut_short_by_the_registration_timeout_is_retried_once(reason, message):
    fw = make_framework()
    await subscribe(fw)
    req = request("carol")
    launching = asyncio.ensure_future(fw.launch(req))
    await asyncio.sleep(0)
    for attempt in range(2):
        await fw.offers(offers(OFFER | {"id": {"value": f"o{attempt}"}}))
        task_id = fw.client.of("launch")[-1][0]
        await fw.update(status(task_id, "TASK_FAILED", reason=reason, message=message))
    with pytest.raises(LaunchFailed, match="raise the agent's --executor_registration_timeout"):
        await launching
    assert len(fw.client.of("launch")) == 2
    await fw.stop()


async def test_background_tasks_are_owned_and_their_failures_logged(caplog):
    fw = make_framework()

    async def boom():
        raise RuntimeError("background bug")

    task = fw._spawn(boom())
    assert task in fw._background
    with pytest.raises(RuntimeError):
        await task
    await asyncio.sleep(0)
    assert task not in fw._background
    assert any("background task failed" in r.getMessage() for r in caplog.records)
    await fw.stop()


async def test_a_requeued_launch_revives_offers_in_an_owned_task():
    fw = make_framework()
    await subscribe(fw)
    launching = asyncio.ensure_future(fw.launch(request("dave")))
    await asyncio.sleep(0)
    await fw.offers(offers(OFFER))
    first = fw.client.of("launch")[-1][0]
    revives = len(fw.client.of("revive"))
    await fw.update(status(first, "TASK_DROPPED", reason="REASON_INVALID_OFFERS"))
    assert fw._background  # the revive runs in the background, owned
    await asyncio.sleep(0.05)
    assert len(fw.client.of("revive")) == revives + 1
    launching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await launching
    await fw.stop()


async def test_unreserved_resources_offered_to_two_roles_in_turn_count_once():
    """DRF offers a GPU agent's unreserved resources to role * in one round and to role spark
    in the next: the free view must show its GPUs once, not once per role."""
    fw = make_framework()
    await subscribe(fw)
    gpu = {"name": "gpus", "type": "SCALAR", "scalar": {"value": 2}}
    offer = OFFER | {"resources": [*OFFER["resources"], gpu]}
    await fw.offers(offers(offer | {"allocation_info": {"role": "*"}}))
    await fw.offers(offers(offer | {"id": {"value": "o2"}, "allocation_info": {"role": "spark"}}))
    (agent,) = fw.capacity()
    assert sum(r.scalar for r in agent.free if r.name == "gpus") == 2
    await fw.stop()


async def test_a_malformed_offer_is_declined_and_the_others_still_used():
    fw = make_framework()
    await subscribe(fw)
    launching = asyncio.ensure_future(fw.launch(request("erin")))
    await asyncio.sleep(0)
    broken = {"id": {"value": "o-bad"}, "hostname": "cpu-2"}  # no agent_id
    await fw.offers(offers(broken, OFFER))
    assert ["o-bad"] in fw.client.of("decline")
    assert fw.client.of("launch") == [["jupyter.hub.erin..n1"]]
    await fw.update(status("jupyter.hub.erin..n1", "TASK_RUNNING"))
    assert (await launching).ports == (31000,)
    await fw.stop()


async def test_the_reaper_kills_only_this_hubs_unclaimed_active_tasks_after_the_grace():
    fw = make_framework(orphan_kill=True, orphan_grace_seconds=0.2)
    prefix = f"jupyter.{fw.config.hub_id}."
    await subscribe(fw)
    fw.track(TaskRecord(prefix + "claimed..n1", agent_id="a1", state="TASK_RUNNING"))
    for task_id in (prefix + "claimed..n1", prefix + "orphan..n1", "jupyter.other-hub.x..n1"):
        await fw.update(status(task_id, "TASK_RUNNING"))
    assert fw.reaper.scheduled and not fw.client.of("kill")  # the grace period first
    for _ in range(50):
        if fw.client.of("kill"):
            break
        await asyncio.sleep(0.05)
    await fw.update(status(prefix + "orphan..n1", "TASK_KILLED"))
    assert fw.client.of("kill") == [prefix + "orphan..n1"]
    await fw.stop()
    assert not fw.reaper.scheduled
