"""MesosFramework and maintenance, driven event by event through a recording fake client:
inverse offers answered, offers of machines going down left alone, rescinded offers forgotten,
drained agents' tasks explained, and a wait for a role's quota told as one (issue 19 items 6
and 8; the same through a hub on both masters is tests/e2e/)."""

from __future__ import annotations

import asyncio
import time

import pytest

from mesosspawner import placement, taskinfo
from mesosspawner.framework import LaunchRequest, MesosFramework, TaskRecord
from mesosspawner.mesos import events
from mesosspawner.mesos.state import RoleQuota
from tests.services.fakes import RecordingClient, framework_config


def make_framework(**overrides) -> MesosFramework:
    config = framework_config(
        master="http://master.invalid:5050",
        name="fake",
        orphan_kill=False,
        maintenance_horizon=3600.0,
        **overrides,
    )
    return MesosFramework(config, client_factory=RecordingClient)


async def subscribe(fw: MesosFramework) -> None:
    fw.client.subscribed = True
    await fw.subscribed(events.Subscribed(framework_id="fw-1"))


def window(starts_in: float) -> dict:
    return {
        "start": {"nanoseconds": int((time.time() + starts_in) * 1e9)},
        "duration": {"nanoseconds": int(3600e9)},
    }


def offer(oid: str, agent: str, cpus: float = 4, role: str = "*", **extra) -> dict:
    return {
        "id": {"value": oid},
        "agent_id": {"value": f"a-{agent}"},
        "hostname": agent,
        "url": {"address": {"hostname": agent, "ip": "127.0.0.1", "port": 5051}},
        "allocation_info": {"role": role},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 4096}},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 9}]}},
        ],
        **extra,
    }


def offers(*items: dict) -> events.Offers:
    return events.parse({"type": "OFFERS", "offers": {"offers": list(items)}})


def inverse(oid: str, agent: str) -> events.InverseOffers:
    return events.parse(
        {
            "type": "INVERSE_OFFERS",
            "inverse_offers": {
                "inverse_offers": [
                    {
                        "id": {"value": oid},
                        "framework_id": {"value": "fw-1"},
                        "agent_id": {"value": f"a-{agent}"},
                        "url": {"address": {"hostname": agent, "ip": "127.0.0.1", "port": 1}},
                        "unavailability": window(600),
                    }
                ]
            },
        }
    )


class Heard:
    """A LaunchObserver that keeps what it hears."""

    def __init__(self) -> None:
        self.waits: list[str | None] = []
        self.retries: list[str] = []

    def queued(self, request) -> None:
        pass

    def waiting(self, request, why=None) -> None:
        self.waits.append(why)

    def accepted(self, placement, task_id) -> None:
        pass

    def retry(self, why) -> None:
        self.retries.append(why)

    def starting(self, record) -> None:
        pass


def request(key: str, cpus: float = 1, role: str = "*") -> LaunchRequest:
    spec = taskinfo.TaskSpec(task_id=f"jupyter.hub.{key}..n1", name=key, argv=("true",), env={})
    needs = placement.Request(key=key, cpus=cpus, mem=128, role=role)
    return LaunchRequest(needs=needs, spec=spec, observer=Heard())


async def test_inverse_offers_are_declined_where_a_notebook_runs_and_accepted_elsewhere(caplog):
    fw = make_framework(idle_refuse_seconds=120)
    await subscribe(fw)
    fw.tasks["t1"] = TaskRecord("t1", agent_id="a-big-1", hostname="big-1", state="TASK_RUNNING")
    await fw.inverse_offers(inverse("io-1", "big-1"))
    await fw.inverse_offers(inverse("io-2", "small-1"))
    assert fw.client.of("decline_inverse") == [["io-1"]]
    assert fw.client.of("accept_inverse") == [["io-2"]]
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "big-1 goes down for maintenance from" in said and "cannot move (t1)" in said
    await fw.stop()


async def test_offers_of_a_machine_going_down_are_left_alone_and_the_wait_says_why():
    fw = make_framework()
    await subscribe(fw)
    req = request("alice")
    launching = asyncio.ensure_future(fw.launch(req))
    await asyncio.sleep(0)
    await fw.offers(offers(offer("o1", "big-1", unavailability=window(600))))
    assert fw.client.of("launch") == []
    assert "big-1 from" in fw.why_waiting(req) and "going down for maintenance" in fw.why_waiting(
        req
    )
    # A machine whose window is beyond the horizon takes the notebook.
    await fw.offers(offers(offer("o2", "small-1", unavailability=window(7200))))
    (task_id,) = fw.client.of("launch")[-1]
    await fw.update(events.TaskStatus(task_id, "TASK_RUNNING", "a-small-1"))
    record = await asyncio.wait_for(launching, 5)
    assert record.hostname == "small-1"
    await fw.stop()


async def test_a_rescinded_offer_is_no_longer_counted_free():
    fw = make_framework()
    await subscribe(fw)
    await fw.offers(offers(offer("o1", "cpu-1", cpus=3)))
    assert placement.free_gpus(fw.capacity()) == 0
    assert sum(r.scalar for a in fw.capacity() for r in a.free if r.name == "cpus") == 3
    await fw.rescind(events.Rescind("o1"))
    assert sum(r.scalar or 0 for a in fw.capacity() for r in a.free if r.name == "cpus") == 0
    await fw.stop()


@pytest.mark.parametrize("state", ["TASK_DROPPED", "TASK_KILLED"])
async def test_a_launch_cut_short_by_a_drain_is_retried(state):
    fw = make_framework()
    await subscribe(fw)
    req = request("bob")
    launching = asyncio.ensure_future(fw.launch(req))
    await asyncio.sleep(0)
    await fw.offers(offers(offer("o1", "cpu-1")))
    (task_id,) = fw.client.of("launch")[-1]
    await fw.update(events.TaskStatus(task_id, state, "a-cpu-1", reason="REASON_AGENT_DRAINING"))
    assert "bob" in fw.pending and not launching.done()
    assert "drained for maintenance" in req.observer.retries[0]
    launching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await launching
    await fw.stop()


def test_a_task_stopped_by_a_drain_says_the_machine_is_drained():
    record = TaskRecord(
        "t1",
        hostname="big-1",
        state="TASK_KILLED",
        reason="REASON_AGENT_DRAINING",
        message="Command exited with status 143",
    )
    assert record.describe() == "killed: machine big-1 is being drained for maintenance"
    record.state = "TASK_GONE_BY_OPERATOR"
    assert record.describe() == "gone_by_operator: machine big-1 is being drained for maintenance"


async def test_a_wait_for_the_roles_quota_is_told_as_one():
    fw = make_framework(roles=("*", "team"))
    # What the master says: GET /master/quota (the limit), GET /master/roles (the use).
    fw.client.master_state["/master/quota"] = {
        "configs": [{"role": "team", "limits": {"cpus": {"value": 1.0}}}]
    }
    fw.client.master_state["/master/roles"] = {
        "roles": [{"name": "team", "quota": {"limit": {"cpus": 1.0}, "consumed": {"cpus": 0.75}}}]
    }
    await subscribe(fw)
    await fw.view.refresh_quotas()
    assert fw.quota("team") == RoleQuota("team", (("cpus", 1.0),), (("cpus", 0.75),))
    req = request("carol", cpus=0.75, role="team")
    launching = asyncio.ensure_future(fw.launch(req))
    await asyncio.sleep(0)
    # The master offers the role only what its limit leaves: 0.25 cpus.
    await fw.offers(offers(offer("o1", "cpu-1", cpus=0.25, role="team")))
    assert req.observer.waits[-1] == (
        "role team's quota: 0.75 of its 1 cpu limit is in use, and this server needs 0.75 cpus"
    )
    assert fw.why_waiting(req).startswith("waiting for role team's quota")
    launching.cancel()
    with pytest.raises(asyncio.CancelledError):
        await launching
    await fw.stop()
