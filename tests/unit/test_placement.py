"""placement: roles, GPU-agent avoidance, constraints, ports, ordering, never over-allocating."""

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesosspawner.mesos.events import Offer, Unavailability
from mesosspawner.mesos.resources import (
    contains,
    merge,
    parse_attributes,
    parse_resources,
    ranges_of,
    scalar,
)
from mesosspawner.mesos.state import RoleQuota
from mesosspawner.placement import (
    AgentCapacity,
    Placed,
    Request,
    beyond_quota,
    classify,
    describe,
    fits_now,
    free_gpus,
    going_down,
    place,
    quota_shortfall,
    shortfall,
    unmet,
    validate_constraints,
)

PLAIN = "cpus:4;mem:8192;disk:10000;ports:[31000-31099]"
GPU = "cpus:8;mem:32768;disk:10000;gpus:2;ports:[32000-32099]"
SPARK = "cpus(spark):16;mem(spark):65536;cpus:2;mem:4096;ports:[33000-33099]"


def offer(oid, host, resources, attributes="", role="*", agent=None):
    return Offer(
        id=oid,
        agent_id=agent or f"agent-{host}",
        hostname=host,
        ip="127.0.0.1",
        allocation_role=role,
        resources=tuple(parse_resources(resources)),
        attributes=tuple(parse_attributes(attributes)),
    )


def capacity(host, total, free=None, attributes=""):
    return AgentCapacity(
        agent_id=f"agent-{host}",
        hostname=host,
        total=tuple(parse_resources(total)),
        free=tuple(parse_resources(free if free is not None else total)),
        attributes=tuple(parse_attributes(attributes)),
    )


def hosts(placements):
    return [p.hostname for p in placements]


# ---------------------------------------------------------------------------- GPU agents


def test_cpu_notebook_avoids_the_gpu_agent():
    offers = [offer("o-gpu", "gpu-1", GPU), offer("o-plain", "plain-1", PLAIN)]
    [p] = place([Request("r", cpus=1, mem=1024)], offers)
    assert p.hostname == "plain-1"
    assert scalar(p.resources, "gpus") == 0


def test_cpu_notebook_uses_the_gpu_agent_when_nothing_else_fits():
    offers = [offer("o-gpu", "gpu-1", GPU), offer("o-plain", "plain-1", PLAIN)]
    [p] = place([Request("r", cpus=6, mem=1024)], offers)
    assert p.hostname == "gpu-1"
    assert scalar(p.resources, "gpus") == 0


def test_agent_known_to_have_gpus_is_avoided_even_when_all_are_in_use():
    busy_gpu = offer("o-gpu", "gpu-1", "cpus:8;mem:32768;ports:[32000-32099]")
    offers = [busy_gpu, offer("o-plain", "plain-1", "cpus:1;mem:2048;ports:[31000-31099]")]
    [p] = place([Request("r", cpus=1, mem=1024)], offers, gpu_agents={"agent-gpu-1"})
    assert p.hostname == "plain-1"
    [p] = place([Request("r", cpus=1, mem=1024)], offers)  # spread alone would pick gpu-1
    assert p.hostname == "gpu-1"


def test_gpu_notebook_gets_whole_gpus_on_the_gpu_agent():
    offers = [offer("o-gpu", "gpu-1", GPU), offer("o-plain", "plain-1", PLAIN)]
    [p] = place([Request("r", cpus=1, mem=1024, gpus=1)], offers)
    assert p.hostname == "gpu-1"
    assert scalar(p.resources, "gpus") == 1


def test_third_gpu_request_waits_when_two_gpus_exist():
    offers = [offer("o-gpu", "gpu-1", GPU)]
    reqs = [Request(f"r{i}", cpus=1, mem=1024, gpus=1) for i in range(3)]
    assert [p.request_key for p in place(reqs, offers)] == ["r0", "r1"]


# ---------------------------------------------------------------------------- roles


def test_spark_request_takes_reserved_resources_first():
    offers = [offer("o-spark", "spark-1", SPARK, role="spark")]
    [p] = place([Request("r", cpus=4, mem=2048, ports=4, role="spark")], offers)
    assert scalar(p.resources, "cpus", "spark") == 4
    assert scalar(p.resources, "cpus", "*") == 0
    assert scalar(p.resources, "mem", "spark") == 2048
    assert p.allocation_role == "spark"


def test_spark_request_tops_up_from_unreserved():
    offers = [offer("o-spark", "spark-1", SPARK, role="spark")]
    [p] = place([Request("r", cpus=17, mem=2048, role="spark")], offers)
    assert scalar(p.resources, "cpus", "spark") == 16
    assert scalar(p.resources, "cpus", "*") == 1


def test_unreserved_request_never_uses_a_spark_reservation():
    # An offer allocated to role spark is not for a "*" request at all ...
    assert (
        place([Request("r", cpus=1, mem=512)], [offer("o", "spark-1", SPARK, role="spark")]) == []
    )
    # ... and without allocation_info only the unreserved part is usable.
    legacy = offer("o", "spark-1", SPARK, role=None)
    [p] = place([Request("r", cpus=2, mem=512)], [legacy])
    assert {r.role for r in p.resources} == {"*"}
    assert place([Request("r", cpus=3, mem=512)], [legacy]) == []


def test_role_request_prefers_the_agent_with_its_reservation_over_unreserved_offered_to_it():
    # Real Mesos (DRF) offers a plain agent's unreserved resources to role spark as well; the
    # Spark notebook must still land on the spark-reserved agent, whatever spread would say.
    offers = [
        offer("o-plain", "a-plain", "cpus:8;mem:8192;ports:[31000-31009]", role="spark"),
        offer(
            "o-spark", "z-spark", "cpus(spark):2;mem(spark):2048;ports:[33000-33009]", role="spark"
        ),
    ]
    [p] = place([Request("r", cpus=2, mem=1024, ports=4, role="spark")], offers)
    assert p.hostname == "z-spark"
    assert scalar(p.resources, "cpus", "spark") == 2
    # When no reserved agent fits, unreserved resources offered to the role still do.
    [p] = place([Request("r", cpus=4, mem=1024, role="spark")], offers)
    assert p.hostname == "a-plain"


def test_request_only_uses_offers_allocated_to_its_role():
    offers = [offer("o-plain", "plain-1", PLAIN, role="*")]
    assert place([Request("r", cpus=1, mem=512, role="spark")], offers) == []


# ---------------------------------------------------------------------------- constraints


def racks():
    return [
        offer("o1", "a", PLAIN, "rack:r1;zone:1"),
        offer("o2", "b", PLAIN, "rack:r2;zone:2"),
        offer("o3", "c", PLAIN, "rack:r3"),
    ]


def only(constraint, placed=(), offers=None, n=1):
    reqs = [Request(f"r{i}", cpus=0.1, mem=64, constraints=(constraint,)) for i in range(n)]
    return hosts(place(reqs, offers or racks(), placed))


def test_like_is_a_full_match_regex():
    assert only(("rack", "LIKE", "r[12]"), n=3) == ["a", "b", "a"]
    assert only(("rack", "LIKE", "r")) == []  # not a prefix match
    assert only(("hostname", "LIKE", "c")) == ["c"]


def test_unlike_excludes_matches_and_accepts_missing_attributes():
    assert set(only(("rack", "UNLIKE", "r[12]"), n=2)) == {"c"}
    assert only(("zone", "UNLIKE", "1|2")) == ["c"]  # c has no zone


def test_is_and_cluster_with_value():
    assert only(("rack", "IS", "r2")) == ["b"]
    assert only(("rack", "CLUSTER", "r3"), n=2) == ["c", "c"]


def test_cluster_without_value_follows_existing_tasks():
    placed = [Placed("agent-b", "b", tuple(parse_attributes("rack:r2")))]
    assert only(("rack", "CLUSTER"), placed=placed, n=2) == ["b", "b"]


def test_unique_hostname_spreads_one_per_agent():
    got = only(("hostname", "UNIQUE"), n=4)
    assert sorted(got) == ["a", "b", "c"]


def test_unique_counts_tasks_already_running():
    placed = [Placed("agent-a", "a"), Placed("agent-b", "b")]
    assert only(("hostname", "UNIQUE"), placed=placed, n=2) == ["c"]


def test_max_per():
    assert sorted(only(("rack", "MAX_PER", "2"), n=7)) == ["a", "a", "b", "b", "c", "c"]


def test_group_by_balances_across_values():
    placed = [Placed("agent-a", "a", tuple(parse_attributes("rack:r1")))] * 2
    got = only(("rack", "GROUP_BY", "3"), placed=placed, n=4)
    assert sorted(got) == ["b", "b", "c", "c"]  # r1 already holds two


def test_missing_attribute_fails_everything_but_unlike():
    assert only(("zone", "LIKE", ".*"), n=3) == ["a", "b", "a"]


@pytest.mark.parametrize(
    "bad, words",
    [
        (["rack", "NEAR", "r1"], "unknown operator"),
        (["rack", "LIKE"], "needs a value"),
        (["rack", "LIKE", "r[1"], "regular expression"),
        (["rack", "MAX_PER", "two"], "whole number"),
        (["hostname", "UNIQUE", "x"], "takes no value"),
        (["rack"], "expected"),
        ("rack:LIKE:r1", "list"),
        ([["rack", 1, "r1"]], "string"),
    ],
)
def test_bad_constraints_are_named(bad, words):
    with pytest.raises(ValueError, match=words):
        validate_constraints([bad] if not isinstance(bad, str) and len(bad) != 1 else bad)


def test_constraints_are_normalised():
    assert validate_constraints([["rack", "like", "r1"], ("h", "MAX_PER", "02")]) == (
        ("rack", "LIKE", "r1"),
        ("h", "MAX_PER", "2"),
    )


# ---------------------------------------------------------------------------- ports, sharing


def test_ports_are_lowest_free_distinct_and_inside_the_offer():
    o = offer("o", "plain-1", "cpus:4;mem:8192;ports:[31000-31001, 31005-31010]")
    ps = place([Request("a", 1, 512, ports=3), Request("b", 1, 512, ports=2)], [o])
    assert ps[0].ports == (31000, 31001, 31005)
    assert ps[1].ports == (31006, 31007)
    for p in ps:
        assert ranges_of(p.resources, "ports") == ranges_of(
            parse_resources(";".join(f"ports:[{x}-{x}]" for x in p.ports)), "ports"
        )


def test_requests_share_an_offer_until_it_is_used_up():
    o = offer("o", "plain-1", "cpus:2;mem:4096;ports:[31000-31099]")
    reqs = [Request(f"r{i}", cpus=0.5, mem=1024) for i in range(6)]
    ps = place(reqs, [o])
    assert [p.request_key for p in ps] == ["r0", "r1", "r2", "r3"]
    assert len({p.ports for p in ps}) == 4


def test_request_without_enough_ports_is_not_placed():
    o = offer("o", "plain-1", "cpus:2;mem:4096;ports:[31000-31002]")
    assert place([Request("r", 1, 512, ports=4)], [o]) == []


# ---------------------------------------------------------------------------- ordering


def test_spread_and_binpack():
    offers = [offer("o1", "big", "cpus:8;mem:8192;ports:[1-9]"), offer("o2", "small", PLAIN)]
    reqs = [Request(f"r{i}", cpus=1, mem=512) for i in range(3)]
    assert hosts(place(reqs, offers, strategy="spread")) == ["big", "big", "big"]
    assert hosts(place(reqs, offers, strategy="binpack")) == ["small", "small", "small"]
    even = [offer("o1", "a", PLAIN), offer("o2", "b", PLAIN)]
    assert hosts(place(reqs, even, strategy="spread")) == ["a", "b", "a"]
    assert hosts(place(reqs, even, strategy="binpack")) == ["a", "a", "a"]


def test_spread_prefers_agents_with_fewer_tasks_on_ties():
    even = [offer("o1", "a", PLAIN), offer("o2", "b", PLAIN)]
    assert hosts(place([Request("r", 1, 512)], even, [Placed("agent-a", "a")])) == ["b"]


def test_unknown_strategy():
    with pytest.raises(ValueError, match="strategy"):
        place([], [], strategy="random")


def test_ties_are_broken_by_hostname_whatever_the_offer_order():
    offers = [offer(f"o{i}", h, PLAIN) for i, h in enumerate("dcab")]
    for _ in range(5):
        random.shuffle(offers)
        assert hosts(place([Request("r", 1, 512)], offers)) == ["a"]


# ---------------------------------------------------------------------------- capacity answers


CLUSTER = [
    capacity("plain-1", PLAIN, attributes="rack:r1"),
    capacity("spark-1", SPARK, attributes="rack:r2"),
]


@pytest.mark.parametrize(
    "request_, message",
    [
        (Request("r", 1, 512, gpus=1), "no agent has 1 GPU (largest: 0)"),
        (
            Request("r", 32, 512, role="spark"),
            "no agent offers 32 cpus in role spark (largest: 18)",
        ),
        (Request("r", 8, 512), "no agent offers 8 cpus (largest: 4)"),
        (Request("r", 1, 10**6), "no agent offers 1000000 MiB of memory (largest: 8192)"),
        (Request("r", 1, 512, ports=500), "no agent offers 500 ports (largest: 100)"),
        (
            Request("r", 1, 512, constraints=(("rack", "LIKE", "r9"),)),
            "no agent matches constraint rack LIKE r9",
        ),
        (
            Request("r", 3, 512, constraints=(("rack", "IS", "r2"),)),
            "no agent offers 3 cpus (largest: 2) among agents matching rack IS r2",
        ),
    ],
)
def test_unmet_names_what_is_missing(request_, message):
    assert unmet(request_, CLUSTER) == message


def test_unmet_is_none_when_some_agent_could_hold_it_even_if_busy():
    busy = [capacity("plain-1", PLAIN, free="cpus:0;mem:0")]
    req = Request("r", 2, 512)
    assert unmet(req, busy) is None
    assert not fits_now(req, busy)
    assert shortfall(req, busy) == "no agent has 2 cpus free (most free: 0)"
    assert fits_now(req, CLUSTER)


def test_unmet_when_no_single_agent_has_everything():
    cluster = [
        capacity("a", "cpus:8;mem:512;ports:[1-10]"),
        capacity("b", "cpus:1;mem:8192;ports:[1-10]"),
    ]
    msg = unmet(Request("r", 4, 4096), cluster)
    assert msg.startswith("no single agent offers 4 cpus, 4096 MiB of memory")


def test_unmet_with_no_agents():
    assert unmet(Request("r", 1, 1), []) == "the cluster has no agents"


def test_gpu_shortfall_message():
    cluster = [capacity("gpu-1", GPU, free="cpus:8;mem:32768;ports:[32000-32099]")]
    req = Request("r", 1, 512, gpus=1)
    assert unmet(req, cluster) is None
    assert shortfall(req, cluster) == "no agent has 1 GPU free (most free: 0)"


# ---------------------------------------------------------------------------- properties

AGENT_RES = st.builds(
    lambda c, m, g, sc, lo, n: f"cpus:{c};mem:{m};gpus:{g};cpus(spark):{sc};ports:[{lo}-{lo + n}]",
    st.integers(0, 8),
    st.integers(0, 8192),
    st.integers(0, 2),
    st.integers(0, 4),
    st.integers(1000, 60000),
    st.integers(0, 6),
)
OFFERS = st.lists(
    st.tuples(AGENT_RES, st.sampled_from(["*", "spark", None]), st.sampled_from(["r1", "r2"])),
    max_size=5,
).map(
    lambda specs: [
        offer(f"o{i}", f"h{i}", res, f"rack:{rack}", role=role)
        for i, (res, role, rack) in enumerate(specs)
    ]
)
REQUESTS = st.lists(
    st.builds(
        Request,
        key=st.text("abcdef", min_size=1, max_size=3),
        cpus=st.sampled_from([0.1, 0.5, 1, 2, 3]),
        mem=st.sampled_from([0, 128, 1024, 4096]),
        gpus=st.integers(0, 1),
        ports=st.integers(0, 4),
        role=st.sampled_from(["*", "spark"]),
        constraints=st.sampled_from([(), (("rack", "LIKE", "r1"),), (("hostname", "UNIQUE"),)]),
    ),
    max_size=8,
    unique_by=lambda r: r.key,
)


@settings(max_examples=200, deadline=None)
@given(REQUESTS, OFFERS, st.sampled_from(["spread", "binpack"]), st.randoms())
def test_never_over_allocates_and_is_deterministic(requests, offers, strategy, rnd):
    result = place(requests, offers, strategy=strategy)
    by_id = {o.id: o for o in offers}
    assert len(result) <= len(requests)
    # Each offer is never asked for more than it holds, ports included.
    for oid, o in by_id.items():
        used = merge(r for p in result if p.offer_id == oid for r in p.resources)
        assert contains(o.resources, used)
        ports = [x for p in result if p.offer_id == oid for x in p.ports]
        assert len(ports) == len(set(ports))
    # Each placement has exactly what its request asked for, from roles it may use.
    for p in result:
        req = next(r for r in requests if r.key == p.request_key)
        o = by_id[p.offer_id]
        assert o.allocation_role in (None, req.role)
        assert {r.role for r in p.resources} <= {req.role, "*"}
        for name in ("cpus", "mem", "gpus"):
            assert round(scalar(p.resources, name), 3) == round(req.amount(name), 3)
        assert len(p.ports) == req.ports
        assert (p.agent_id, p.hostname) == (o.agent_id, o.hostname)
    # Deterministic: same answer whatever order the offers arrive in.
    shuffled = list(offers)
    rnd.shuffle(shuffled)
    assert place(requests, shuffled, strategy=strategy) == result


@settings(max_examples=100, deadline=None)
@given(REQUESTS, OFFERS)
def test_cpu_requests_land_on_gpu_agents_only_when_no_plain_agent_fits(requests, offers):
    for req in requests:
        if req.gpus:
            continue
        result = place([req], offers)
        if not result:
            continue
        plain_fits = place([req], [o for o in offers if scalar(o.resources, "gpus") == 0])
        if plain_fits:
            assert (
                scalar(next(o for o in offers if o.id == result[0].offer_id).resources, "gpus") == 0
            )


def test_shortfall_names_constraints_blocked_by_running_tasks():
    cluster = [capacity("a", PLAIN)]
    req = Request("r", 1, 512, constraints=(("hostname", "UNIQUE"),))
    assert unmet(req, cluster) is None
    assert shortfall(req, cluster, [Placed("agent-a", "a")]) == (
        "no agent currently matches constraint hostname UNIQUE"
    )
    assert fits_now(req, cluster)


@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(cpus=-1), "cpus"),
        (dict(mem=float("nan")), "mem"),
        (dict(gpus=0.5), "gpus"),
        (dict(ports=-1), "ports"),
        (dict(role=""), "role"),
        (dict(constraints=[["rack", "NEAR"]]), "operator"),
    ],
)
def test_bad_requests_are_refused(kw, words):
    args = dict(key="r", cpus=1, mem=512) | kw
    with pytest.raises(ValueError, match=words):
        Request(**args)


def test_whole_float_gpus_are_accepted():
    assert Request("r", 1, 512, gpus=1.0).gpus == 1


# ---------------------------------------------------------------------------- classify


def test_classify_now_wait_never():
    agents = [capacity("gpu-1", GPU, free="cpus:8;mem:32768;gpus:0;ports:[32000-32009]")]
    assert classify(Request("a", cpus=1, mem=512), agents).kind == "now"
    gpu = classify(Request("b", cpus=1, mem=512, gpus=1), agents)
    assert gpu.kind == "wait" and gpu.why.startswith("waiting: ") and "GPU" in gpu.why
    never = classify(Request("c", cpus=1, mem=512, gpus=4), agents)
    assert never.kind == "never" and "GPU" in never.why


def test_classify_without_totals_or_agents_never_says_never():
    agents = [capacity("cpu-1", PLAIN)]
    huge = Request("a", cpus=64, mem=512)
    assert classify(huge, agents).kind == "never"
    assert classify(huge, agents, totals_known=False).kind == "wait"
    assert classify(huge, []).kind == "wait"
    assert classify(huge, []).why == "cluster not seen yet"


def test_describe_and_free_gpus():
    assert describe(Request("a", cpus=2, mem=4096)) == "2 cpus, 4096 MiB memory"
    assert describe(Request("a", cpus=0.5, mem=512, gpus=2, role="spark")) == (
        "0.5 cpus, 512 MiB memory, 2 GPUs, role spark"
    )
    assert free_gpus([]) is None
    assert free_gpus([capacity("gpu-1", GPU, free="cpus:1;gpus:1"), capacity("c", PLAIN)]) == 1


# ---------------------------------------------------------------------------- maintenance

NOW = 1_800_000_000.0


def down(offer_, starts_in: float, lasts: float | None = 3600.0) -> Offer:
    """``offer_`` from a machine in a maintenance window (``Offer.unavailability``)."""
    return dataclasses.replace(offer_, unavailability=Unavailability(NOW + starts_in, lasts))


def test_no_notebook_on_a_machine_going_down_within_the_horizon():
    big = offer("o1", "big-1", "cpus:8;mem:8192;ports:[31000-31009]")
    small = offer("o2", "small-1", "cpus:2;mem:2048;ports:[32000-32009]")
    req = [Request("a", 1, 512)]
    assert hosts(place(req, [big, small])) == ["big-1"]  # spread: the most free
    soon = down(big, starts_in=600)
    assert hosts(place(req, [soon, small], now=NOW, horizon=3600)) == ["small-1"]
    # Beyond the horizon, and once the window is over, the machine is fine again.
    assert hosts(place(req, [down(big, 7200), small], now=NOW, horizon=3600)) == ["big-1"]
    assert hosts(place(req, [down(big, -7200), small], now=NOW, horizon=3600)) == ["big-1"]
    # In the window now (for good: no duration), or without a horizon given, as Mesos says.
    assert hosts(place(req, [down(big, -60, None), small], now=NOW, horizon=0)) == ["small-1"]
    assert hosts(place(req, [soon, small])) == ["big-1"]
    # Nothing else fits: the request waits rather than start on a machine going down.
    assert place(req, [soon], now=NOW, horizon=3600) == []


def test_going_down():
    window = Unavailability(NOW + 100, 50)
    assert not going_down(None, NOW, 1000)
    assert going_down(window, NOW, 100) and not going_down(window, NOW, 99)
    assert going_down(window, NOW + 120, 0)  # in the window
    assert not going_down(window, NOW + 150, 1000)  # over


# ---------------------------------------------------------------------------- quota


def team(cpus_limit: float, used: float = 0.0) -> RoleQuota:
    return RoleQuota("team", (("cpus", cpus_limit),), (("cpus", used),) if used else ())


def test_a_request_beyond_its_roles_quota_limit_never_starts_naming_the_quota():
    agents = [capacity("cpu-1", "cpus:8;mem:8192;ports:[31000-31009]")]
    big = Request("a", 2, 256, role="team")
    fit = classify(big, agents, quota=team(1))
    assert fit.kind == "never"
    assert "quota of role team allows it 1 cpu at most" in fit.why and "2 cpus" in fit.why
    assert classify(Request("b", 1, 256, role="team"), agents, quota=team(1)).kind == "now"
    assert beyond_quota(big, team(2), agents) is None


def test_reservations_count_towards_the_limit_but_are_always_offered():
    # 4 cpus reserved for team on one agent, limit 5: a task holds the 4 and 1 more unreserved.
    agents = [
        capacity("spark-1", "cpus(team):4;mem(team):4096;cpus:4;mem:4096"),
        capacity("cpu-1", "cpus:8;mem:8192"),
    ]
    assert beyond_quota(Request("a", 5, 256, role="team"), team(5), agents) is None
    assert "5 cpus at most" in beyond_quota(Request("a", 5.5, 256, role="team"), team(5), agents)
    # A limit below the reservations: the reservations still come.
    assert beyond_quota(Request("a", 4, 256, role="team"), team(2), agents) is None


def test_a_request_the_quota_holds_once_others_stop_waits_for_the_quota():
    # Offers to team shrink to what the limit leaves: 0.25 of 1 cpu with 0.75 in use.
    agents = [
        capacity("cpu-1", "cpus:4;mem:4096;ports:[1-2]", free="cpus:0.25;mem:4096;ports:[1-2]")
    ]
    req = Request("b", 0.75, 256, role="team")
    fit = classify(req, agents, quota=team(1, used=0.75))
    assert fit.kind == "wait"
    assert fit.why == (
        "waiting for role team's quota: 0.75 of its 1 cpu limit is in use,"
        " and this server needs 0.75 cpus"
    )
    assert quota_shortfall(req, team(1, used=0.25), agents) is None
    with pytest.raises(ValueError, match="quota of role 'team'"):
        quota_shortfall(Request("c", 1, 256), team(1), agents)
