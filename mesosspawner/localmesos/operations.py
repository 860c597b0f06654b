"""Dynamic reservations: the operator's ``POST /master/reserve`` and ``/master/unreserve``, and
a framework's RESERVE / UNRESERVE operations in ACCEPT.

As Mesos 1.11 does it (``Master::Http::reserve``/``_unreserve``/``_operation`` in
``src/master/http.cpp``, ``validation::operation`` in ``src/master/validation.cpp``): the body is
form-encoded ``slaveId`` and ``resources`` (a JSON array of Resources, either format); every
resource must be dynamically reserved (its top reservation DYNAMIC) and unallocated; outstanding
offers holding what the operation needs are rescinded (with the default 5 s filter), and an
operation the agent's available resources cannot cover answers 409. Success is 202 and changes
the agent's total: RESERVE pops nothing and pushes the reservation, UNRESERVE pops it.

Without HTTP authentication no principal and no ACL is involved; the reservation's principal
is recorded as given. localmesos keeps these reservations in the master only: a new leader after
a failover learns the agents' resources from their flags again (real agents checkpoint them).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from mesosspawner.mesos.resources import (
    UNRESERVED,
    Resource,
    ResourceError,
    contains,
    format_resources,
    merge,
    resource_from_json,
    subtract,
)

if TYPE_CHECKING:
    from .master import Master
    from .model import Agent, Framework

log = logging.getLogger("mesosspawner.localmesos.master")


class OperationError(Exception):
    """The operation is refused with an HTTP status and Mesos's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_form(values: dict[str, list[str]]) -> tuple[str, list[dict]]:
    """``slaveId`` and the ``resources`` JSON array of a decoded form body."""
    slave_id = values.get("slaveId")
    if not slave_id:
        raise OperationError(400, "Missing 'slaveId' query parameter in the request body")
    raw = values.get("resources")
    if not raw:
        raise OperationError(400, "Missing 'resources' query parameter in the request body")
    try:
        data = json.loads(raw[-1])
    except ValueError as e:
        raise OperationError(
            400, f"Error parsing 'resources' query parameter in the request body: {e}"
        ) from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise OperationError(
            400,
            "Error parsing 'resources' query parameter in the request body:"
            " expected a JSON array of Resource objects",
        )
    return slave_id[-1], data


def reserve(master: Master, agent_id: str, resources: list[dict]) -> None:
    """RESERVE on ``agent_id`` by the operator; ``OperationError`` when refused."""
    agent = _agent(master, agent_id)
    wanted = _parse(resources)
    where = f"agent {agent.id} at slave(1)@{agent.ip}:{agent.port} ({agent.hostname})"
    for raw, r in zip(resources, wanted, strict=True):
        _check_dynamic(r, f"Invalid RESERVE operation on {where}")
        if "allocation_info" in raw:
            raise OperationError(
                400,
                f"Invalid RESERVE operation on {where}: A reserve operation was attempted with"
                " an allocated resource, but the operator API only allows reservations to be"
                " made to unallocated resources",
            )
    consumed = merge(_popped(r) for r in wanted)
    _apply(master, agent, consumed, merge(wanted))


def unreserve(master: Master, agent_id: str, resources: list[dict]) -> None:
    """UNRESERVE on ``agent_id`` by the operator; ``OperationError`` when refused."""
    agent = _agent(master, agent_id)
    wanted = _parse(resources)
    for r in wanted:
        _check_dynamic(r, "Invalid UNRESERVE operation")
    consumed = merge(wanted)
    _apply(master, agent, consumed, merge(_popped(r) for r in wanted))


def _agent(master: Master, agent_id: str) -> Agent:
    agent = master.agents.get(agent_id)
    if agent is None:
        raise OperationError(400, "No agent found with specified ID")
    return agent


def _parse(resources: list[dict]) -> list[Resource]:
    try:
        return [resource_from_json(r) for r in resources]
    except ResourceError as e:
        raise OperationError(
            400, f"Error parsing 'resources' query parameter in the request body: {e}"
        ) from None


def _check_dynamic(r: Resource, context: str) -> None:
    if not r.dynamic:
        raise OperationError(
            400, f"{context}: Resource {format_resources([r])} is not dynamically reserved"
        )


def _popped(r: Resource) -> Resource:
    """``r`` with its top reservation removed: what a RESERVE consumes, an UNRESERVE gives."""
    return replace(r, role=UNRESERVED, reservations=r.reservations[:-1])


def _apply(master: Master, agent: Agent, consumed: list[Resource], produced: list[Resource]):
    """Replace ``consumed`` by ``produced`` in the agent's total, rescinding offers first."""
    _rescind_offers_holding(master, agent, consumed)
    available = agent.available()
    if not contains(available, consumed):
        raise OperationError(
            409, f"{format_resources(available)} does not contain {format_resources(consumed)}"
        )
    agent.total = merge([*subtract(agent.total, consumed), *produced])
    agent.refresh_totals()
    master.allocator.schedule()


def _rescind_offers_holding(master: Master, agent: Agent, needed: list[Resource]) -> None:
    """Mesos rescinds offers of the agent, one at a time, until the operation is covered,
    each with the default 5 s filter so the next allocation does not hand them out again."""
    allocator = master.allocator
    for offer in [o for o in allocator.offers.values() if o.agent_id == agent.id]:
        if contains(agent.available(), needed):
            return
        keys = {r.key for r in needed}
        if not any(r.key in keys for r in offer.resources):
            continue
        allocator.remove_offer(offer, rescind=True)
        fw = master.frameworks.get(offer.framework_id)
        if fw is not None:
            allocator.add_filter(fw, offer, offer.resources, {})


# ---------------------------------------------------------------------------- in ACCEPT


def apply_offer_operation(
    master: Master,
    fw: Framework,
    agent: Agent,
    role: str,
    pool: list[Resource],
    kind: str,
    body: dict,
) -> list[Resource]:
    """A RESERVE or UNRESERVE operation of an ACCEPT on ``pool`` (the accepted offers'
    resources, allocated to ``role``); returns the pool after it. As Mesos's ``_accept``, an
    invalid operation is dropped (logged) and the rest of the ACCEPT goes on."""
    raw = body.get("resources") if isinstance(body, dict) else None
    try:
        wanted = [resource_from_json(r) for r in raw or []]
        if not wanted:
            raise OperationError(400, "no resources")
        for data, r in zip(raw, wanted, strict=True):
            _check_dynamic(r, kind)
            alloc = (data.get("allocation_info") or {}).get("role", role)
            if alloc != role:
                raise OperationError(400, f"resource allocated to role {alloc!r}, not {role!r}")
            if kind == "RESERVE":
                if r.role != role or role not in fw.roles:
                    raise OperationError(
                        400,
                        f"a reservation for role {r.role!r} from resources allocated to {role!r}"
                        f" (the framework's roles: {', '.join(fw.roles)})",
                    )
                principal = fw.info.get("principal")
                if principal and r.reservations[-1].principal != principal:
                    raise OperationError(
                        400,
                        f"the reservation's principal {r.reservations[-1].principal!r} is not"
                        f" the framework's {principal!r}",
                    )
        if kind == "RESERVE":
            consumed, produced = merge(_popped(r) for r in wanted), merge(wanted)
        else:
            consumed, produced = merge(wanted), merge(_popped(r) for r in wanted)
        if not contains(pool, consumed):
            raise OperationError(
                409, f"{format_resources(pool)} does not contain {format_resources(consumed)}"
            )
    except (OperationError, ResourceError, AttributeError, TypeError) as e:
        log.warning("Dropping %s offer operation from framework %s: %s", kind, fw.id, e)
        return pool
    agent.total = merge([*subtract(agent.total, consumed), *produced])
    agent.refresh_totals()
    return merge([*subtract(pool, consumed), *produced])
