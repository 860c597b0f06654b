"""Quota limits (Mesos 1.9+ ``UPDATE_QUOTA``/``GET_QUOTA``, ``GET /quota``, ``GET /roles``),
against both masters: what the operator calls answer, and that a limited role is never
offered more unreserved resources than its limit leaves (issue 19 item 8).

Quotas stay on the master: every test gets a cluster of its own.
"""

from __future__ import annotations

import time

import pytest

from mesosspawner.localmesos.testing import command_task, framework_info
from tests.services.cluster import get_json

pytestmark = [pytest.mark.timeout(120), pytest.mark.own_cluster]


def update(*configs: dict, force: bool = False) -> dict:
    body: dict = {"quota_configs": list(configs)}
    if force:
        body["force"] = True
    return {"type": "UPDATE_QUOTA", "update_quota": body}


def limits(role: str, **amounts: float) -> dict:
    return {"role": role, "limits": {k: {"value": v} for k, v in amounts.items()}}


async def test_quota_is_set_shown_and_reset(backend):
    assert await get_json(f"{backend.master_url}/quota") == {}
    code, body = await backend.operator(update(limits("team", cpus=1, mem=1024)))
    assert (code, body) == (200, None)
    config = {"role": "team", "limits": {"cpus": {"value": 1.0}, "mem": {"value": 1024.0}}}
    status = {"infos": [{"role": "team"}], "configs": [config]}
    assert await get_json(f"{backend.master_url}/quota") == status
    assert await get_json(f"{backend.master_url}/master/quota") == status
    code, got = await backend.operator({"type": "GET_QUOTA"})
    assert got == {"type": "GET_QUOTA", "get_quota": {"status": status}}
    roles = await get_json(f"{backend.master_url}/roles")
    (team,) = [r for r in roles["roles"] if r["name"] == "team"]
    assert team["quota"]["limit"] == {"cpus": 1.0, "mem": 1024.0}
    assert team["quota"]["consumed"] == {}
    # An empty config resets the role to no limit; the role stays listed.
    code, body = await backend.operator(update({"role": "team"}))
    assert code == 200, body
    reset = {"infos": [{"role": "team"}], "configs": [{"role": "team"}]}
    assert await get_json(f"{backend.master_url}/quota") == reset


@pytest.mark.parametrize(
    "call, message",
    [
        ({"type": "UPDATE_QUOTA"}, "Expecting 'update_quota' to be present"),
        (
            update(limits("team", cpus=-1)),
            "Invalid limit configuration {'cpus': -1}: Negative values not supported",
        ),
        (
            update(
                {"role": "team", "guarantees": {"cpus": {"value": 2}}, **limits("team", cpus=1)}
            ),
            "'QuotaConfig.guarantees' { cpus: 2 } is not contained within the"
            " 'QuotaConfig.limits' { cpus: 1 }",
        ),
        (update(limits("bad role", cpus=1)), "contains backspace or whitespace"),
        (update(limits("a/b", cpus=1)), "Updating quota on nested role 'a/b' is not supported yet"),
        (
            update({"role": "team", "guarantees": {"cpus": {"value": 100}}}),
            "total quota guarantees 'cpus:100' exceed cluster capacity",
        ),
    ],
)
async def test_bad_quota_updates_are_refused_with_mesos_messages(backend, call, message):
    code, body = await backend.operator(call)
    assert code == 400 and message in body, (code, body)


async def offered(s, role: str, seconds: float) -> list[dict]:
    """Every offer to ``role`` within ``seconds`` (offers are declined with a long filter, so
    each resource is offered once)."""
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            batch = await s.offers(timeout=left)
        except TimeoutError:
            break
        out += [o for o in batch if o["allocation_info"]["role"] == role]
    return out


def amount(offers: list[dict], name: str) -> float:
    return sum(
        r["scalar"]["value"]
        for o in offers
        for r in o["resources"]
        if r["name"] == name and not r.get("reservations") and r.get("role", "*") == "*"
    )


async def test_a_limited_role_is_offered_no_more_than_its_limit_leaves(backend, connect):
    code, body = await backend.operator(update(limits("team", cpus=1.5, mem=1024)))
    assert code == 200, body
    s = connect()
    await s.subscribe(framework_info(roles=["team"], capabilities=[{"type": "MULTI_ROLE"}]))
    # However free the agents (5 unreserved cpus between them), the role sees 1.5 at once.
    first = await offered(s, "team", 1.5)
    assert first and amount(first, "cpus") <= 1.5 and amount(first, "mem") <= 1024
    offer = max(first, key=lambda o: amount([o], "cpus"))
    await s.accept(
        [offer["id"]["value"]], [command_task(offer, "t1", "sleep 300", cpus=1, mem=256)]
    )
    while (status := await s.update("t1"))["state"] != "TASK_RUNNING":
        if "uuid" in status:
            await s.ack(status)
    await s.ack(status)
    rest = [o["id"] for o in first if o["id"] != offer["id"]]
    code, text = await s.call(
        {"type": "DECLINE", "decline": {"offer_ids": rest, "filters": {"refuse_seconds": 0}}}
    )
    assert code == 202, text
    # The task holds 1 of the 1.5 cpus: the role is offered half a cpu at most from now on.
    code, text = await s.call({"type": "REVIVE"})
    assert code == 202, text
    later = await offered(s, "team", 1.5)
    assert later and amount(later, "cpus") <= 0.5, later
    roles = await get_json(f"{backend.master_url}/roles")
    (team,) = [r for r in roles["roles"] if r["name"] == "team"]
    assert team["quota"]["consumed"]["cpus"] == 1
