"""Offers: per role, GPU withholding, reservations, filters, suppress/revive, rescind."""

from __future__ import annotations

import asyncio

import pytest

from mesosspawner.localmesos.testing import RawScheduler, command_task, framework_info


async def _collect(s, seconds: float) -> list[dict]:
    """Every offer received within ``seconds``."""
    out: list[dict] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            out.extend(await s.offers(timeout=left))
        except TimeoutError:
            break
    return out


def _res(offer: dict) -> dict:
    return {(r["name"], r.get("role", "*")): r for r in offer["resources"]}


async def test_plain_framework_gets_no_gpu_agent_and_no_spark_reservation(connect):
    s = connect()
    await s.subscribe(framework_info())
    offers = await _collect(s, 1.0)
    hosts = {o["hostname"] for o in offers}
    assert hosts == {"agent-1", "spark-1"}
    spark = next(o for o in offers if o["hostname"] == "spark-1")
    assert set(_res(spark)) == {("cpus", "*"), ("mem", "*"), ("disk", "*"), ("ports", "*")}
    # Mesos clears allocation_info for frameworks that are not MULTI_ROLE capable.
    assert "allocation_info" not in spark
    assert all("allocation_info" not in r for r in spark["resources"])
    agent1 = next(o for o in offers if o["hostname"] == "agent-1")
    assert agent1["url"]["address"]["ip"] == "127.0.0.1"
    assert {"name": "rack", "type": "TEXT", "text": {"value": "r1"}} in agent1["attributes"]
    ports = _res(agent1)[("ports", "*")]
    assert ports["type"] == "RANGES"
    assert ports["ranges"] == {"range": [{"begin": 31000, "end": 31009}]}


async def test_gpu_framework_gets_the_gpu_agent(connect):
    s = connect()
    await s.subscribe(framework_info(capabilities=[{"type": "GPU_RESOURCES"}]))
    offers = await _collect(s, 1.0)
    gpu = next(o for o in offers if o["hostname"] == "gpu-1")
    assert _res(gpu)[("gpus", "*")]["scalar"]["value"] == 2


async def test_spark_role_gets_reserved_resources_legacy_format(connect):
    s = connect()
    await s.subscribe(framework_info(role="spark"))
    offers = await _collect(s, 1.0)
    spark = next(o for o in offers if o["hostname"] == "spark-1")
    res = _res(spark)
    assert res[("cpus", "spark")]["scalar"]["value"] == 4
    assert res[("cpus", "*")]["scalar"]["value"] == 1


async def test_multi_role_refinement_format(connect):
    s = connect()
    caps = [{"type": "MULTI_ROLE"}, {"type": "RESERVATION_REFINEMENT"}]
    await s.subscribe(framework_info(roles=["spark", "other"], capabilities=caps))
    offers = await _collect(s, 1.0)
    for offer in offers:
        role = offer["allocation_info"]["role"]
        for r in offer["resources"]:
            assert "role" not in r
            assert r["allocation_info"] == {"role": role}
            # A role never sees another role's reservation.
            assert r.get("reservations", [{"role": role}])[-1]["role"] == role
    spark_cpus = [
        (o["allocation_info"]["role"], r)
        for o in offers
        if o["hostname"] == "spark-1"
        for r in o["resources"]
        if r["name"] == "cpus"
    ]
    reserved = [(role, r) for role, r in spark_cpus if r.get("reservations")]
    assert [(role, r["scalar"]["value"]) for role, r in reserved] == [("spark", 4)]
    assert reserved[0][1]["reservations"] == [{"type": "STATIC", "role": "spark"}]
    # The unreserved part goes to one of the subscribed roles (DRF picks which), once.
    unreserved = [
        (role, r["scalar"]["value"]) for role, r in spark_cpus if not r.get("reservations")
    ]
    assert len(unreserved) == 1
    assert unreserved[0][0] in ("spark", "other") and unreserved[0][1] == 1


async def test_unreserved_resources_go_to_the_role_with_the_lowest_share(connect):
    # Both roles start at share 0; whichever gets an agent first has the higher share when
    # the next agent is allocated, so two agents go to two different roles (not both to "*"
    # or to the first role).
    s = connect()
    await s.subscribe(framework_info(roles=["a", "b"], capabilities=[{"type": "MULTI_ROLE"}]))
    offers = await _collect(s, 1.0)
    roles = {o["hostname"]: o["allocation_info"]["role"] for o in offers}
    assert set(roles) == {"agent-1", "spark-1"}
    assert set(roles.values()) == {"a", "b"}


async def test_decline_filter_holds_for_refuse_seconds(connect):
    s = connect()
    await s.subscribe(framework_info())
    offers = await _collect(s, 0.6)
    ids = [{"value": o["id"]["value"]} for o in offers]
    decline = {"offer_ids": ids, "filters": {"refuse_seconds": 1.5}}
    assert (await s.call({"type": "DECLINE", "decline": decline}))[0] == 202
    assert await _collect(s, 0.8) == []
    again = await _collect(s, 2.0)
    assert {o["hostname"] for o in again} == {"agent-1", "spark-1"}


async def test_revive_clears_filters(connect):
    s = connect()
    await s.subscribe(framework_info())
    offers = await _collect(s, 0.6)
    ids = [{"value": o["id"]["value"]} for o in offers]
    await s.call(
        {"type": "DECLINE", "decline": {"offer_ids": ids, "filters": {"refuse_seconds": 60}}}
    )
    assert await _collect(s, 0.5) == []
    await s.call({"type": "REVIVE"})
    assert {o["hostname"] for o in await _collect(s, 1.0)} == {"agent-1", "spark-1"}


async def test_suppress_stops_offers_until_revive(connect):
    s = connect()
    await s.subscribe(framework_info())
    await s.call({"type": "SUPPRESS", "suppress": {}})
    offers = await _collect(s, 0.6)
    ids = [{"value": o["id"]["value"]} for o in offers]
    await s.call(
        {"type": "DECLINE", "decline": {"offer_ids": ids, "filters": {"refuse_seconds": 0}}}
    )
    assert await _collect(s, 1.0) == []
    await s.call({"type": "REVIVE", "revive": {}})
    assert await _collect(s, 1.0) != []


async def test_suppress_per_role(connect):
    s = connect()
    caps = [{"type": "MULTI_ROLE"}]
    await s.subscribe(
        framework_info(roles=["spark", "web"], capabilities=caps), suppressed_roles=["web"]
    )
    offers = await _collect(s, 1.0)
    assert {o["allocation_info"]["role"] for o in offers} == {"spark"}
    ids = [{"value": o["id"]["value"]} for o in offers]
    await s.call(
        {"type": "DECLINE", "decline": {"offer_ids": ids, "filters": {"refuse_seconds": 60}}}
    )
    await s.call({"type": "REVIVE", "revive": {"roles": ["web"]}})
    offers = await _collect(s, 1.0)
    assert {o["allocation_info"]["role"] for o in offers} == {"web"}
    assert {o["hostname"] for o in offers} == {"agent-1", "spark-1"}


async def test_unused_resources_of_accept_come_back(connect):
    s = connect()
    await s.subscribe(framework_info())
    offers = await _collect(s, 0.6)
    agent1 = next(o for o in offers if o["hostname"] == "agent-1")
    task = command_task(agent1, "t-part", "sleep 30", cpus=1, mem=128)
    await s.accept([agent1["id"]["value"]], [task], filters={"refuse_seconds": 0.5})
    back = [o for o in await _collect(s, 2.0) if o["hostname"] == "agent-1"]
    assert back, "the unused part of the offer was not offered again"
    assert _res(back[0])[("cpus", "*")]["scalar"]["value"] == 3


async def test_offer_timeout_rescinds(make_backend):
    b = await make_backend(offer_timeout=0.5)
    s = RawScheduler(b.url)
    try:
        await s.subscribe(framework_info())
        offers = await s.offers()
        rescind = await s.next_event("RESCIND", timeout=5)
        assert rescind["rescind"]["offer_id"] in [o["id"] for o in offers]
    finally:
        await s.close()


@pytest.mark.parametrize("gpus", [False, True], ids=["plain", "gpu-frameworks"])
async def test_offers_are_split_between_frameworks(connect, gpus):
    """Two frameworks share the cluster: every agent they may get is offered, each to one of
    them, never to both (GPU agents only to frameworks that declare GPU_RESOURCES)."""
    caps = [{"type": "GPU_RESOURCES"}] if gpus else []
    a, b = connect(), connect()
    await a.subscribe(framework_info(name="a", capabilities=caps))
    await b.subscribe(framework_info(name="b", capabilities=caps))
    got_a = await _collect(a, 1.5)
    got_b = await _collect(b, 0.5)
    ids_a = {o["id"]["value"] for o in got_a}
    ids_b = {o["id"]["value"] for o in got_b}
    assert not ids_a & ids_b
    hosts = [o["hostname"] for o in got_a + got_b]
    assert len(hosts) == len(set(hosts))  # one agent's resources are never offered twice
    expected = {"agent-1", "spark-1"} | ({"gpu-1"} if gpus else set())
    assert set(hosts) == expected  # and every agent is offered to one of them


@pytest.mark.own_cluster  # its reservation stays on the agent
async def test_dynamic_reservation_is_offered_and_carried_into_the_task(connect, backend):
    # RESERVE in ACCEPT: the reservation is offered back (type DYNAMIC, labels kept) and a
    # task must carry it unchanged. localmesos used to ignore RESERVE (issue 19 item 4).
    s = connect()
    caps = [{"type": "MULTI_ROLE"}, {"type": "RESERVATION_REFINEMENT"}]
    await s.subscribe(framework_info(roles=["web"], capabilities=caps))
    offer = next(o for o in await _collect(s, 0.6) if o["hostname"] == "agent-1")
    reservation = {
        "type": "DYNAMIC",
        "role": "web",
        "labels": {"labels": [{"key": "owner", "value": "conformance"}]},
    }
    cpus = {
        "name": "cpus",
        "type": "SCALAR",
        "scalar": {"value": 0.5},
        "allocation_info": {"role": "web"},
        "reservations": [reservation],
    }
    reserve = {"type": "RESERVE", "reserve": {"resources": [cpus]}}
    accept = {"offer_ids": [offer["id"]], "operations": [reserve], "filters": {"refuse_seconds": 0}}
    assert (await s.call({"type": "ACCEPT", "accept": accept}))[0] == 202
    again = next(o for o in await _collect(s, 1.0) if o["hostname"] == "agent-1")
    dynamic = [r for r in again["resources"] if r.get("reservations")]
    assert dynamic == [cpus]
    task = command_task(again, "t-dynamic", "sleep 30", mem=32)
    task["resources"].append(dynamic[0])
    await s.accept([again["id"]["value"]], [task])
    while (status := await s.update("t-dynamic"))["state"] != "TASK_RUNNING":
        assert status["state"] == "TASK_STARTING", status
        await s.ack(status)
    slaves = await backend.slaves()
    agent = next(a for a in slaves if a["hostname"] == "agent-1")
    assert agent["reserved_resources"]["web"]["cpus"] == 0.5


async def test_revive_or_suppress_of_an_unsubscribed_role_is_dropped(connect):
    # 202, and the whole call is dropped (master.cpp): the subscribed role stays suppressed.
    s = connect()
    await s.subscribe(
        framework_info(roles=["web"], capabilities=[{"type": "MULTI_ROLE"}]),
        suppressed_roles=["web"],
    )
    for kind in ("REVIVE", "SUPPRESS"):
        code, text = await s.call({"type": kind, kind.lower(): {"roles": ["web", "elsewhere"]}})
        assert (code, text) == (202, "")
    assert await _collect(s, 1.0) == []
    assert (await s.call({"type": "REVIVE", "revive": {"roles": ["web"]}}))[0] == 202
    assert {o["allocation_info"]["role"] for o in await _collect(s, 1.0)} == {"web"}
