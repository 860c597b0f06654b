"""The GPU queue's pure policy: the admin's rules, fair share over a half-life, quotas with
borrowing, and cull deadlines with their warnings. Plain data in, plain data out."""

from __future__ import annotations

import math

import pytest

from mesosspawner.gpuqueue import culling, fairshare, quotas
from mesosspawner.gpuqueue.fairshare import Usage
from mesosspawner.gpuqueue.policy import Session, Ticket, load_policy

HOUR = 3600.0


def ticket(key, user, group="g", since=0.0, gpus=1, **kw) -> Ticket:
    return Ticket(key, user, group, gpus, since=since, **kw)


def session(key, user, group="g", started=0.0, last=None, gpus=1, **kw) -> Session:
    return Session(key, user, group, gpus, started, started if last is None else last, **kw)


# ---------------------------------------------------------------------------- the admin's rules


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"groups": {"a": {"share": 0}}}, r"gpu_groups\['a'\].share must be > 0"),
        ({"groups": {"a": {"quota": 3, "limit": 2}}}, "limit 2 is below its quota 3"),
        ({"groups": {"a": {"quota": 1.5}}}, "whole number of GPUs"),
        ({"groups": {"a": {"shares": 1}}}, r"unknown key\(s\) shares"),
        ({"groups": ["a"]}, "must be a dict"),
        ({"order": "lifo"}, "gpu_queue_order must be one of fairshare, fifo"),
        ({"half_life": 0}, "gpu_usage_half_life must be > 0"),
        ({"user_quota": -1}, "gpu_user_quota must be a whole number"),
        ({"user_shares": {"ann": "x"}}, r"gpu_user_shares\['ann'\] must be a number"),
    ],
)
def test_bad_settings_are_refused_naming_them(kwargs, words):
    with pytest.raises(ValueError, match=words):
        load_policy(**kwargs)


def test_a_person_counts_in_the_first_configured_group_they_belong_to():
    policy = load_policy(groups={"vision": {}, "nlp": {}})
    assert policy.group_for(["nlp", "vision"]) == "vision"  # the admin's order, not theirs
    assert policy.group_for(["nlp"]) == "nlp"
    assert policy.group_for(["staff"]) == "others"


# ---------------------------------------------------------------------------- fair share


def test_usage_halves_every_half_life_and_accrues_to_a_steady_state():
    assert fairshare.decay(100.0, 2 * HOUR, HOUR) == pytest.approx(25.0)
    one_hour = fairshare.accrued(Usage(0.0, 0.0), 1, HOUR, 100 * HOUR)
    assert one_hour.value == pytest.approx(HOUR, rel=0.01)  # barely decayed
    forever = fairshare.accrued(Usage(0.0, 0.0), 2, 1000 * HOUR, HOUR)
    assert forever.value == pytest.approx(2 * HOUR / math.log(2))  # gpus / λ


def test_charge_brings_every_record_to_now_charging_what_was_held():
    history = {("g", "ann"): Usage(1000.0, 0.0), ("g", "bob"): Usage(0.0005, 0.0)}
    out = fairshare.charge(history, [session("t", "cat", started=-50.0)], 10.0, HOUR)
    assert out[("g", "ann")].at == 10.0 and out[("g", "ann")].value < 1000.0
    # New to the records: charged from the last charge (0), not from its start (-50).
    assert out[("g", "cat")].value == pytest.approx(10.0, rel=0.01)
    assert ("g", "bob") not in out  # decayed to nothing
    fresh = fairshare.charge({}, [session("t", "cat", started=4.0)], 10.0, HOUR)
    assert fresh[("g", "cat")].value == pytest.approx(6.0, rel=0.01)


def test_fifo_keeps_arrival_order_whatever_the_usage():
    policy = load_policy(order="fifo")
    usage = {("g", "heavy"): 1e6}
    tickets = [ticket("b", "light", since=2), ticket("a", "heavy", since=1)]
    assert [t.key for t in fairshare.order(tickets, usage, policy)] == ["a", "b"]


def test_a_heavier_group_waits_behind_a_lighter_one_of_equal_share():
    policy = load_policy(groups={"red": {"share": 1}, "blue": {"share": 1}})
    usage = {("red", "heavy"): 500.0, ("blue", "other"): 100.0}
    tickets = [ticket("h", "heavy", "red", since=1), ticket("l", "light", "blue", since=2)]
    assert [t.key for t in fairshare.order(tickets, usage, policy)] == ["l", "h"]


def test_shares_weigh_usage_a_double_share_for_double_usage_is_even():
    policy = load_policy(groups={"small": {"share": 1}, "big": {"share": 2}})
    usage = {("small", "s"): 100.0, ("big", "b"): 200.0}
    tickets = [ticket("b", "b", "big", since=2), ticket("s", "s", "small", since=1)]
    # Equal standing: who asked first goes first.
    assert [t.key for t in fairshare.order(tickets, usage, policy)] == ["s", "b"]
    usage[("big", "b")] = 150.0
    assert [t.key for t in fairshare.order(tickets, usage, policy)] == ["b", "s"]


def test_inside_a_group_the_person_who_used_less_goes_first():
    policy = load_policy(user_shares={"vip": 4})
    usage = {("others", "ann"): 100.0, ("others", "bob"): 10.0, ("others", "vip"): 120.0}
    tickets = [ticket(u, u, "others", since=i) for i, u in enumerate(["ann", "bob", "vip"])]
    # vip used most but has 4 shares: 120/4 is below ann's 100/1 and above bob's 10/1.
    assert [t.key for t in fairshare.order(tickets, usage, policy)] == ["bob", "vip", "ann"]


# ---------------------------------------------------------------------------- quotas


def test_a_request_beyond_the_persons_quota_is_refused_naming_it():
    policy = load_policy(user_quota=1, user_quotas={"vip": 3})
    held = [session("t1", "ann")]
    why = quotas.refusal(ticket("k", "ann"), held, [], policy)
    assert why.startswith("Your GPU quota is 1 GPU and you hold 1 GPU; this server asks for 1")
    assert "c.MesosSpawner.gpu_user_quota" in why
    waiting = [ticket("w", "vip", gpus=2)]
    why = quotas.refusal(ticket("k", "vip", gpus=2), [], waiting, policy)
    assert "Your GPU quota is 3 GPUs and you already wait for 2 GPUs" in why
    assert "gpu_user_quotas['vip']" in why
    assert quotas.refusal(ticket("k", "bob"), held, [], policy) is None


def test_a_request_bigger_than_its_groups_limit_is_refused():
    policy = load_policy(groups={"small": {"limit": 1}})
    why = quotas.refusal(ticket("k", "ann", "small", gpus=2), [], [], policy)
    assert "Your group 'small' may hold at most 1 GPU at once" in why


def verdicts(tickets, sessions, policy, capacity):
    return {v.key: v for v in quotas.admission(tickets, sessions, policy, capacity)}


def test_within_its_quota_a_group_starts_beyond_it_it_borrows_only_what_nobody_needs():
    policy = load_policy(groups={"a": {"quota": 1}, "b": {"quota": 1}})
    held = [session("s1", "a1", "a")]
    # b holds nothing and waits for nothing: its quota is lent to a.
    out = verdicts([ticket("a2", "a2", "a")], held, policy, capacity=2)
    assert out["a2"].status == quotas.START and out["a2"].borrowing
    # b waits: its quota is its own, a's second request is held.
    out = verdicts([ticket("a2", "a2", "a"), ticket("b1", "b1", "b", since=1)], held, policy, 2)
    assert out["a2"].status == quotas.HELD
    assert "uses its quota of 1 GPU and no other group's is free to borrow" in out["a2"].why
    assert out["b1"].status == quotas.START and not out["b1"].borrowing


def test_without_borrowing_a_group_stays_within_its_quota():
    policy = load_policy(groups={"a": {"quota": 1}}, borrowing=False)
    out = verdicts([ticket("a2", "a2", "a")], [session("s1", "a1", "a")], policy, 4)
    assert out["a2"].status == quotas.HELD and "uses its quota of 1 GPU" in out["a2"].why


def test_a_groups_limit_holds_its_next_request_back():
    policy = load_policy(groups={"a": {"quota": 1, "limit": 2}})
    held = [session("s1", "a1", "a"), session("s2", "a2", "a")]
    out = verdicts([ticket("a3", "a3", "a")], held, policy, 8)
    assert out["a3"].status == quotas.HELD and "holds its limit of 2 GPUs" in out["a3"].why


def test_strict_order_a_small_request_never_jumps_a_big_one():
    policy = load_policy()
    held = [session("s1", "x")]
    tickets = [ticket("big", "ann", gpus=2), ticket("small", "bob", since=1)]
    out = verdicts(tickets, held, policy, capacity=2)  # one GPU free
    assert out["big"].status == quotas.NEXT and out["small"].status == quotas.NEXT
    # A quota hold does not hold the others up.
    policy = load_policy(user_quota=1)
    tickets = [ticket("held", "x"), ticket("free", "bob", since=1)]
    out = verdicts(tickets, held, policy, capacity=2)
    assert out["held"].status == quotas.HELD and out["free"].status == quotas.START


def test_borrowed_servers_are_the_newest_beyond_the_quota_and_owed_counts_what_is_due():
    policy = load_policy(groups={"a": {"quota": 1}, "b": {"quota": 2}})
    held = [session("old", "a1", "a", started=0), session("new", "a2", "a", started=5)]
    assert [s.key for s in quotas.borrowed(held, policy)] == ["new"]
    # b holds 1 of its quota of 2 and waits for more on a full cluster: 1 must come back...
    held.append(session("b1", "b1", "b"))
    want = [ticket("b2", "b2", "b"), ticket("b3", "b3", "b", since=1)]
    assert quotas.owed(want, held, policy, capacity=3) == 1
    # ... unless a GPU is free anyway.
    assert quotas.owed(want, held, policy, capacity=4) == 0


# ---------------------------------------------------------------------------- culling


def actions(sessions, policy, now, warned=None, tickets=(), capacity=None):
    due = culling.deadlines(sessions, list(tickets), policy, capacity, now)
    return culling.actions(due, warned or {}, policy, now)


def test_an_idle_server_is_warned_then_culled_at_its_deadline():
    policy = load_policy(warning_seconds=600)
    s = session("t", "ann", last=0.0, idle_limit=HOUR, profile="gpu")
    assert actions([s], policy, now=HOUR - 700) == []
    (warn,) = actions([s], policy, now=HOUR - 600)
    assert warn.kind == culling.WARN and warn.at == HOUR
    assert "has not been used for 50 min" in warn.why and "gpu" in warn.why
    assert actions([s], policy, now=HOUR - 1, warned={"t": HOUR - 600}) == []
    (cull,) = actions([s], policy, now=HOUR, warned={"t": HOUR - 600})
    assert cull.kind == culling.CULL and cull.deadline_kind == culling.IDLE


def test_a_late_warning_postpones_the_cull_and_use_withdraws_it():
    policy = load_policy(warning_seconds=600)
    s = session("t", "ann", last=0.0, idle_limit=60)
    (warn,) = actions([s], policy, now=100)  # past the deadline, never warned
    assert warn.kind == culling.WARN and warn.at == 700
    assert actions([s], policy, now=650, warned={"t": 100}) == []
    assert actions([s], policy, now=700, warned={"t": 100})[0].kind == culling.CULL
    used = session("t", "ann", last=650, idle_limit=HOUR)
    assert [a.kind for a in actions([used], policy, now=660, warned={"t": 100})] == [culling.CLEAR]


def test_max_age_is_a_deadline_that_activity_does_not_move():
    policy = load_policy(warning_seconds=60)
    s = session("t", "ann", started=0, last=7 * HOUR, max_age=2 * HOUR)
    (warn,) = actions([s], policy, now=7 * HOUR)
    assert warn.deadline_kind == culling.MAX_AGE and "run at most 2 h" in warn.why


def test_borrowed_idle_servers_go_first_when_the_owners_wait_never_active_ones():
    policy = load_policy(
        groups={"a": {"quota": 1}, "b": {"quota": 1}},
        reclaim_idle_seconds=300,
        warning_seconds=0,
    )
    held = [
        session("own", "a1", "a", started=0, last=0),
        session("lent-idle", "a2", "a", started=1, last=0),
        session("lent-busy", "a3", "a", started=2, last=1000),
    ]
    want = [ticket("b1", "b1", "b")]
    acts = actions(held, policy, now=1000, tickets=want, capacity=3)
    assert [(a.key, a.kind, a.deadline_kind) for a in acts] == [
        ("lent-idle", culling.WARN, culling.RECLAIM)
    ]
    assert "borrowed from another group's quota" in acts[0].why
    acts = actions(held, policy, now=1000, warned={"lent-idle": 1000}, tickets=want, capacity=3)
    assert [(a.key, a.kind) for a in acts] == [("lent-idle", culling.CULL)]
    # Nobody waiting for it: no reclaim at all.
    assert actions(held, policy, now=1000, capacity=3) == []
    # The admin's opt-in: the active one goes too (after the warning).
    eager = load_policy(
        groups={"a": {"quota": 1}, "b": {"quota": 1}}, reclaim_active=True, warning_seconds=60
    )
    busy = [held[0], held[2]]
    (warn,) = actions(busy, eager, now=1000, tickets=want, capacity=2)
    assert (warn.key, warn.kind) == ("lent-busy", culling.WARN)
    (cull,) = actions(busy, eager, now=1060, warned={"lent-busy": 1000}, tickets=want, capacity=2)
    assert (cull.key, cull.kind) == ("lent-busy", culling.CULL)
