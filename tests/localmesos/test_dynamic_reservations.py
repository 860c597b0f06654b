"""Dynamic reservations (issue 19 item 4), against both masters.

An operator reserves part of an agent for a role with ``POST /master/reserve`` (form-encoded
``slaveId`` and ``resources``, as the Mesos operator docs show with curl). Frameworks of that
role are then offered those resources with their reservation: the legacy ``role`` plus
``reservation: {principal, labels}`` without RESERVATION_REFINEMENT, the ``reservations`` stack
with it. A task must hand that reservation back unchanged: the same role without it means a
static reservation, which the agent does not have, and the launch fails with TASK_ERROR.

Without HTTP authentication (these masters run without it) the operator endpoints need no
principal and no ACL; the reservation's ``principal`` is then just a record of who reserved.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from mesosspawner.localmesos.testing import framework_info

# Reservations stay on the agents: every test gets a cluster of its own.
pytestmark = [pytest.mark.timeout(120), pytest.mark.own_cluster]

AGENT = "agent-1"  # cpus:4;mem:4096, nothing reserved by the agent itself
PRINCIPAL = "ops"
LABELS = {"labels": [{"key": "reserved-for", "value": "spark-lab"}]}


def dynamic(name: str, value: float, role: str = "spark") -> dict:
    """A dynamically reserved scalar in the RESERVATION_REFINEMENT format."""
    return {
        "name": name,
        "type": "SCALAR",
        "scalar": {"value": value},
        "reservations": [
            {"type": "DYNAMIC", "role": role, "principal": PRINCIPAL, "labels": LABELS}
        ],
    }


async def operator(backend, endpoint: str, agent_id: str | None, resources: list) -> tuple:
    """POST /master/reserve or /master/unreserve, form-encoded; (code, body text)."""
    form = {"resources": json.dumps(resources)}
    if agent_id is not None:
        form["slaveId"] = agent_id
    request = HTTPRequest(
        f"{backend.url}/master/{endpoint}",
        method="POST",
        body=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        request_timeout=10,
    )
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    return response.code, (response.body or b"").decode(errors="replace")


async def agent_entry(backend, hostname: str) -> dict:
    return next(a for a in await backend.slaves() if a["hostname"] == hostname)


def spark_framework(**extra) -> dict:
    caps = [{"type": "MULTI_ROLE"}] + [{"type": c} for c in extra.pop("capabilities", ())]
    return framework_info(roles=["spark"], capabilities=caps, failover_timeout=60, **extra)


async def offer_from(s, hostname: str, timeout: float = 15) -> dict:
    while True:
        for offer in await s.offers(timeout=timeout):
            if offer["hostname"] == hostname:
                return offer


def task(offer: dict, task_id: str, resources: list[dict]) -> dict:
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": resources,
        "command": {"value": "sleep 60", "shell": True},
    }


def part_of(offered: dict, value: float) -> dict:
    """``value`` of an offered scalar, every other field (role, reservation(s)) as offered."""
    return dict(offered, scalar={"value": value})


async def test_reserved_by_the_operator_offered_with_the_reservation_which_a_task_must_keep(
    backend, connect
):
    agent_id = await backend.agent_id(AGENT)
    code, text = await operator(
        backend, "reserve", agent_id, [dynamic("cpus", 2), dynamic("mem", 1024)]
    )
    assert code == 202, text

    entry = await agent_entry(backend, AGENT)
    assert entry["reserved_resources"]["spark"]["cpus"] == 2
    assert entry["reserved_resources"]["spark"]["mem"] == 1024
    assert entry["unreserved_resources"]["cpus"] == 2
    full = {r["name"]: r for r in entry["reserved_resources_full"]["spark"]}
    assert full["cpus"]["reservations"] == [
        {"type": "DYNAMIC", "role": "spark", "principal": PRINCIPAL, "labels": LABELS}
    ]

    # Without RESERVATION_REFINEMENT: the legacy role + reservation.
    s = connect()
    await s.subscribe(spark_framework())
    offer = await offer_from(s, AGENT)
    cpus = [r for r in offer["resources"] if r["name"] == "cpus"]
    reserved = next(r for r in cpus if r["role"] == "spark")
    assert reserved["reservation"] == {"principal": PRINCIPAL, "labels": LABELS}
    assert reserved["scalar"]["value"] == 2
    assert "reservations" not in reserved
    mem = next(r for r in offer["resources"] if r["name"] == "mem" and r["role"] == "spark")

    # The reservation dropped: the same role reads as a static reservation, which agent-1
    # does not have.
    static = [
        {k: v for k, v in part_of(r, 0.5).items() if k != "reservation"} for r in (reserved, mem)
    ]
    kept = [part_of(reserved, 0.5), part_of(mem, 64)]
    await s.call(
        {
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [offer["id"]],
                "operations": [
                    {
                        "type": "LAUNCH",
                        "launch": {
                            "task_infos": [
                                task(offer, "dyn-static", static),
                                task(offer, "dyn-kept", kept),
                            ]
                        },
                    }
                ],
            },
        }
    )
    refused = await s.update("dyn-static")
    assert refused["state"] == "TASK_ERROR", refused
    assert refused["reason"] == "REASON_TASK_INVALID"
    status = await s.update("dyn-kept")
    while status["state"] != "TASK_RUNNING":
        assert status["state"] in ("TASK_STAGING", "TASK_STARTING"), status
        if "uuid" in status:
            await s.ack(status)
        status = await s.update("dyn-kept")

    # With RESERVATION_REFINEMENT: the stack itself.
    r = connect()
    await r.subscribe(spark_framework(name="refined", capabilities=["RESERVATION_REFINEMENT"]))
    offer = await offer_from(r, AGENT)
    stacks = [x.get("reservations") for x in offer["resources"] if x["name"] == "cpus"]
    assert [
        {"type": "DYNAMIC", "role": "spark", "principal": PRINCIPAL, "labels": LABELS}
    ] in stacks
    assert all("role" not in x for x in offer["resources"])


async def test_unreserve_gives_the_resources_back_and_refusals_name_the_problem(backend):
    agent_id = await backend.agent_id(AGENT)
    assert (await operator(backend, "reserve", agent_id, [dynamic("cpus", 1)]))[0] == 202

    code, text = await operator(backend, "reserve", None, [dynamic("cpus", 1)])
    assert code == 400 and "slaveId" in text, text
    code, text = await operator(backend, "reserve", "no-such-agent", [dynamic("cpus", 1)])
    assert code == 400 and "No agent found" in text, text
    static = {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "role": "spark"}
    code, text = await operator(backend, "reserve", agent_id, [static])
    assert code == 400 and "not dynamically reserved" in text, text
    code, text = await operator(backend, "reserve", agent_id, [dynamic("cpus", 100)])
    assert code == 409, text

    code, text = await operator(backend, "unreserve", agent_id, [dynamic("cpus", 1)])
    assert code == 202, text
    entry = await agent_entry(backend, AGENT)
    assert "spark" not in entry["reserved_resources"]
    assert entry["unreserved_resources"]["cpus"] == 4
    code, text = await operator(backend, "unreserve", agent_id, [dynamic("cpus", 1)])
    assert code == 409, text
