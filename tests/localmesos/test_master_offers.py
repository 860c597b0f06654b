"""Offers: per role, GPU withholding, reservations, filters, suppress/revive, rescind."""

from __future__ import annotations

import asyncio

import pytest

from mesosspawner.localmesos.cluster import LocalCluster
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
    assert set(_res(spark)) == {("cpus", "*"), ("mem", "*"), ("ports", "*")}
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
    spark = [o for o in offers if o["hostname"] == "spark-1"]
    assert len(spark) == 1 and spark[0]["allocation_info"] == {"role": "spark"}
    for r in spark[0]["resources"]:
        assert "role" not in r
        assert r["allocation_info"] == {"role": "spark"}
        if r["name"] in ("cpus", "mem") and r["scalar"]["value"] >= 512 * 8:
            assert r["reservations"] == [{"type": "STATIC", "role": "spark"}]
    cpus = [r for r in spark[0]["resources"] if r["name"] == "cpus"]
    assert sorted(bool(r.get("reservations")) for r in cpus) == [False, True]
    # Roles compete for unreserved resources; a role never sees another role's reservation.
    other = [o for o in offers if o["allocation_info"]["role"] == "other"]
    assert all(_res(o).get(("cpus", "spark")) is None for o in other)


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


async def test_offer_timeout_rescinds(cluster_config, tmp_path):
    c = LocalCluster(
        cluster_config,
        port=0,
        heartbeat_interval=5,
        offer_timeout=0.5,
        work_dir=str(tmp_path),
        allocation_interval=0.2,
    )
    await c.start()
    s = RawScheduler(c.url)
    try:
        await s.subscribe(framework_info())
        offers = await s.offers()
        rescind = await s.next_event("RESCIND", timeout=5)
        assert rescind["rescind"]["offer_id"] in [o["id"] for o in offers]
    finally:
        await s.close()
        await c.stop()


@pytest.mark.parametrize("partition_aware", [False, True])
async def test_offers_are_split_between_frameworks(connect, partition_aware):
    a, b = connect(), connect()
    await a.subscribe(framework_info(name="a"))
    await b.subscribe(framework_info(name="b"))
    got_a = await _collect(a, 0.6)
    got_b = await _collect(b, 0.6)
    ids_a = {o["id"]["value"] for o in got_a}
    ids_b = {o["id"]["value"] for o in got_b}
    assert not ids_a & ids_b
    hosts = [o["hostname"] for o in got_a + got_b]
    assert len(hosts) == len(set(hosts))  # one agent's resources are never offered twice
