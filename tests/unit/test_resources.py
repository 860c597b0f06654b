"""mesos/resources.py: parse/format round trips and arithmetic, with hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesosspawner.mesos.resources import (
    Attribute,
    Resource,
    ResourceError,
    attributes_state_json,
    contains,
    first_values,
    format_attributes,
    format_resources,
    merge,
    normalize_ranges,
    parse_attributes,
    parse_resources,
    ranges_of,
    resource_from_json,
    resource_to_json,
    resources_state_json,
    scalar,
    subtract,
    subtract_ranges,
)

names = st.sampled_from(["cpus", "mem", "disk", "gpus", "ports", "ephemeral_ports", "net-bw"])
roles = st.sampled_from(["*", "spark", "web", "team/a"])
fixed = st.integers(min_value=0, max_value=10_000_000).map(lambda v: v / 1000)


@st.composite
def range_lists(draw) -> tuple[tuple[int, int], ...]:
    pairs = draw(st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 200)), max_size=6))
    return normalize_ranges((b, min(b + n, 65535)) for b, n in pairs)


@st.composite
def resource_lists(draw) -> list[Resource]:
    out = []
    for name in draw(st.lists(names, unique=True, max_size=5)):
        role = draw(roles)
        if name in ("ports", "ephemeral_ports"):
            rs = draw(range_lists())
            if rs:
                out.append(Resource(name, role, ranges=rs))
        elif name == "gpus":
            out.append(Resource(name, role, scalar=float(draw(st.integers(1, 8)))))
        else:
            value = draw(fixed)
            if value > 0:
                out.append(Resource(name, role, scalar=value))
    return out


@settings(deadline=None)  # a loaded CI machine must not fail a property
@given(resource_lists())
def test_text_round_trip(resources):
    assert parse_resources(format_resources(resources)) == merge(resources)


@settings(deadline=None)  # a loaded CI machine must not fail a property
@given(resource_lists(), st.booleans())
def test_json_round_trip(resources, refinement):
    back = merge(resource_from_json(resource_to_json(r, refinement=refinement)) for r in resources)
    assert back == merge(resources)


@settings(deadline=None)  # a loaded CI machine must not fail a property
@given(resource_lists(), resource_lists())
def test_subtract_what_was_merged_in(have, extra):
    total = merge(have + extra)
    assert contains(total, extra)
    assert contains(total, have)
    rest = subtract(total, extra)
    assert _same(merge(rest + extra), total)


def _same(a: list[Resource], b: list[Resource]) -> bool:
    return contains(a, b) and contains(b, a)


@settings(deadline=None)  # a loaded CI machine must not fail a property
@given(resource_lists())
def test_subtract_self_is_empty(resources):
    assert subtract(resources, resources) == []


@settings(deadline=None)  # a loaded CI machine must not fail a property
@given(range_lists(), range_lists())
def test_range_subtraction_disjoint_from_taken(have, take):
    rest = subtract_ranges(have, take)
    values = {v for b, e in rest for v in range(b, e + 1)}
    taken = {v for b, e in take for v in range(b, e + 1)}
    had = {v for b, e in have for v in range(b, e + 1)}
    assert values == had - taken


def test_roles_in_parentheses_and_ranges_and_sets():
    res = parse_resources("cpus(spark):4; mem:1024 ;ports:[31000-31002, 31005-31005];zones:{a,b}")
    assert scalar(res, "cpus", "spark") == 4
    assert scalar(res, "mem") == 1024
    assert ranges_of(res, "ports") == ((31000, 31002), (31005, 31005))
    assert next(r for r in res if r.name == "zones").items == frozenset({"a", "b"})
    assert first_values(ranges_of(res, "ports"), 4) == [31000, 31001, 31002, 31005]


def test_same_name_and_role_merge():
    assert parse_resources("cpus:1;cpus:2.5;cpus(x):1") == [
        Resource("cpus", "*", scalar=3.5),
        Resource("cpus", "x", scalar=1.0),
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("cpus:abc", "cpus:abc"),
        ("cpus", "NAME:VALUE"),
        ("cpus(spark:1", "NAME(ROLE)"),
        ("ports:[10-5]", "ends before"),
        ("ports:[a-b]", "BEGIN-END"),
        ("gpus:1.5", "whole"),
        ("cpus:-1", "negative"),
        ("cpus( ):1", "role"),
    ],
)
def test_malformed_resources_name_the_text(text, fragment):
    with pytest.raises(ResourceError) as e:
        parse_resources(text)
    assert fragment in str(e.value)


def test_subtract_more_than_held_is_an_error():
    with pytest.raises(ResourceError):
        subtract(parse_resources("cpus:1"), parse_resources("cpus:2"))
    with pytest.raises(ResourceError):
        subtract(parse_resources("cpus(spark):4"), parse_resources("cpus:1"))


def test_scalar_precision_is_fixed_point():
    res = subtract(parse_resources("cpus:1"), parse_resources("cpus:0.1;cpus:0.2"))
    assert scalar(res, "cpus") == 0.7


@settings(deadline=None)  # a loaded CI machine must not fail a property
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True),
            st.one_of(
                # "nan"/"inf" read as numbers, as Mesos's values::parse would try too.
                st.from_regex(r"[a-z][a-z0-9_.]{0,8}", fullmatch=True).filter(
                    lambda t: t.lower().lstrip("+-") not in ("nan", "inf", "infinity")
                ),
                st.integers(0, 10_000).map(float),
                range_lists().filter(bool),
            ),
        ),
        max_size=5,
        unique_by=lambda t: t[0],
    )
)
def test_attribute_round_trip(pairs):
    attrs = [Attribute(n, v) for n, v in pairs]
    assert parse_attributes(format_attributes(attrs)) == attrs


def test_attributes_types_and_state_json():
    attrs = parse_attributes("rack:12;zone:eu-1;slots:[1-4]")
    assert [a.type for a in attrs] == ["SCALAR", "TEXT", "RANGES"]
    assert attributes_state_json(attrs) == {"rack": 12.0, "zone": "eu-1", "slots": "[1-4]"}


def test_state_json_sums_roles():
    res = parse_resources("cpus(spark):4;cpus:2;ports:[1-3]")
    assert resources_state_json(res) == {
        "cpus": 6.0,
        "mem": 0.0,
        "disk": 0.0,
        "gpus": 0.0,
        "ports": "[1-3]",
    }


def test_json_formats_per_capability():
    r = Resource("cpus", "spark", scalar=2.0)
    legacy = resource_to_json(r, allocation_role="spark")
    assert legacy["role"] == "spark" and "reservations" not in legacy
    assert legacy["allocation_info"] == {"role": "spark"}
    refined = resource_to_json(r, refinement=True)
    assert refined["reservations"] == [{"type": "STATIC", "role": "spark"}]
    assert "role" not in refined
    assert "reservations" not in resource_to_json(Resource("cpus", scalar=1.0), refinement=True)
