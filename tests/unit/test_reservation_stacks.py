"""Dynamic reservations through resources, placement and taskinfo (issue 19 item 4).

The offers are as Mesos 1.11 sends them (seen in tests/localmesos/test_dynamic_reservations.py
against the real master): without RESERVATION_REFINEMENT a dynamically reserved resource has the
legacy ``role`` and ``reservation: {principal, labels}``; with it, a ``reservations`` stack. A
task must carry them back exactly, or Mesos reads a static reservation and refuses the task.
"""

from __future__ import annotations

import pytest

from mesosspawner.mesos.events import offer_from_json
from mesosspawner.mesos.resources import (
    ResourceError,
    contains,
    merge,
    resource_from_json,
    resource_to_json,
    scalar,
    subtract,
)
from mesosspawner.placement import Request, place
from mesosspawner.taskinfo import SparkSettings, TaskSpec, build_task_info, labels_for

LABELS = {"labels": [{"key": "reserved-for", "value": "spark-lab"}]}
LEGACY = {"principal": "ops", "labels": LABELS}
STACK = [{"type": "DYNAMIC", "role": "spark", "principal": "ops", "labels": LABELS}]


def scalar_json(name: str, value: float, **fields) -> dict:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}, **fields}


def ports_json(begin: int, end: int) -> dict:
    return {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": begin, "end": end}]}}


def offer_json(resources: list[dict], role: str = "spark") -> dict:
    alloc = {"role": role}
    return {
        "id": {"value": "o1"},
        "framework_id": {"value": "fw"},
        "agent_id": {"value": "agent-1"},
        "hostname": "agent-1",
        "url": {"scheme": "http", "address": {"ip": "127.0.0.1", "port": 5051}},
        "allocation_info": alloc,
        "resources": [dict(r, allocation_info=alloc) for r in resources],
        "attributes": [],
    }


def spark_spec() -> TaskSpec:
    return TaskSpec(
        task_id="jupyter.hub.alice..n1",
        name="jupyter-alice",
        argv=("jupyterhub-singleuser",),
        env={"JUPYTERHUB_USER": "alice"},
        labels=labels_for("hub", "alice", ""),
        spark=SparkSettings("mesos://zk://127.0.0.1:2181/mesos", None, "spark", {}),
    )


def by_name(task: dict) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in task["resources"]:
        out.setdefault(r["name"], []).append(r)
    return out


def test_a_spark_launch_hands_back_the_dynamic_reservation_it_was_offered():
    offer = offer_from_json(
        offer_json(
            [
                scalar_json("cpus", 2, role="spark", reservation=LEGACY),
                scalar_json("mem", 2048, role="spark", reservation=LEGACY),
                scalar_json("cpus", 2, role="*"),
                scalar_json("mem", 2048, role="*"),
                dict(ports_json(31000, 31009), role="*"),
            ]
        )
    )
    request = Request(key="alice/", cpus=2, mem=1024, ports=5, role="spark")
    [p] = place([request], [offer])
    task = build_task_info(spark_spec(), p)

    resources = by_name(task)
    assert [r["role"] for r in resources["cpus"]] == ["spark"]
    assert resources["cpus"][0]["reservation"] == LEGACY
    assert resources["mem"][0]["reservation"] == LEGACY
    assert resources["mem"][0]["scalar"]["value"] == 1024
    assert all("reservation" not in r for r in resources["ports"])  # unreserved: as offered
    assert all(r["allocation_info"] == {"role": "spark"} for r in task["resources"])


def test_static_and_dynamic_reservations_of_one_role_stay_apart():
    static = resource_from_json(scalar_json("cpus", 3, role="spark"))
    dynamic = resource_from_json(scalar_json("cpus", 2, role="spark", reservation=LEGACY))
    assert static.role == dynamic.role == "spark"
    assert not static.dynamic and dynamic.dynamic
    both = merge([static, dynamic])
    assert len(both) == 2 and scalar(both, "cpus", "spark") == 5
    assert not contains(
        [static], [resource_from_json(scalar_json("cpus", 1, role="spark", reservation=LEGACY))]
    )
    assert not contains([dynamic], [resource_from_json(scalar_json("cpus", 1, role="spark"))])
    with pytest.raises(ResourceError):
        subtract([dynamic], [resource_from_json(scalar_json("cpus", 1, role="spark"))])

    # A request bigger than either part takes from both, each part with its own reservation.
    offer = offer_from_json(
        offer_json(
            [
                scalar_json("cpus", 3, role="spark"),
                scalar_json("cpus", 2, role="spark", reservation=LEGACY),
                scalar_json("mem", 4096, role="spark"),
                dict(ports_json(31000, 31009), role="*"),
            ]
        )
    )
    first = Request(key="a/", cpus=4, mem=1024, ports=5, role="spark")
    second = Request(key="b/", cpus=1, mem=1024, ports=5, role="spark")
    third = Request(key="c/", cpus=0.5, mem=1024, ports=1, role="spark")
    placed = place([first, second, third], [offer])
    assert [p.request_key for p in placed] == ["a/", "b/"]
    cpus = {(r.dynamic, r.scalar) for r in placed[0].resources if r.name == "cpus"}
    assert cpus == {(False, 3), (True, 1)}
    task = build_task_info(spark_spec(), placed[0])
    assert sorted((r["scalar"]["value"], "reservation" in r) for r in by_name(task)["cpus"]) == [
        (1, True),
        (3, False),
    ]


def test_both_formats_round_trip_and_refined_stacks_need_the_capability():
    legacy = scalar_json("cpus", 2, role="spark", reservation=LEGACY)
    refined = scalar_json("cpus", 2, reservations=STACK)
    r = resource_from_json(legacy)
    assert r == resource_from_json(refined)
    assert resource_to_json(r) == legacy
    assert resource_to_json(r, refinement=True) == refined
    endpoint = resource_to_json(r, endpoint=True)
    assert endpoint["reservations"] == STACK and endpoint["reservation"] == LEGACY

    static = resource_from_json(scalar_json("cpus", 2, role="spark"))
    assert resource_to_json(static) == scalar_json("cpus", 2, role="spark")
    assert resource_to_json(static, refinement=True) == scalar_json(
        "cpus", 2, reservations=[{"type": "STATIC", "role": "spark"}]
    )

    two_levels = resource_from_json(
        scalar_json(
            "cpus",
            1,
            reservations=[
                {"type": "STATIC", "role": "spark"},
                {"type": "DYNAMIC", "role": "spark/alice", "principal": "ops"},
            ],
        )
    )
    assert two_levels.role == "spark/alice"
    with pytest.raises(ResourceError, match="RESERVATION_REFINEMENT"):
        resource_to_json(two_levels)
    assert len(resource_to_json(two_levels, refinement=True)["reservations"]) == 2
