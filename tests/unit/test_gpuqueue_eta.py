"""Where a waiting GPU request stands and when it should start, and the words a person reads:
the replay of the queue's own rules over the running servers' predicted ends."""

from __future__ import annotations

import pytest

from mesosspawner.gpuqueue import eta
from mesosspawner.gpuqueue.plan import plan
from mesosspawner.gpuqueue.policy import Session, Ticket, load_policy

MIN = 60.0


def ticket(key, user, group="others", since=0.0, **kw) -> Ticket:
    return Ticket(key, user, group, 1, since=since, **kw)


def session(key, user, group="others", started=0.0, last=0.0, **kw) -> Session:
    return Session(key, user, group, 1, started, last, **kw)


@pytest.mark.parametrize(
    "n, words",
    [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (13, "13th"), (22, "22nd")],
)
def test_ordinals(n, words):
    assert eta.ordinal(n) == words


def test_the_persons_line():
    assert eta.queue_line(3, 12 * MIN) == "3rd in the GPU queue, about 12 min"
    assert eta.queue_line(1, 20) == "1st in the GPU queue, less than a minute"
    assert eta.queue_line(2, 3 * 3600) == "2nd in the GPU queue, about 3 h"
    assert eta.queue_line(1, None).startswith("1st in the GPU queue, no estimate yet")
    held = eta.queue_line(1, 5 * MIN, "group red uses its quota of 2 GPUs")
    assert held.endswith("(group red uses its quota of 2 GPUs)")


def test_the_idle_deadlines_of_running_servers_give_the_first_estimates():
    policy = load_policy()
    running = [session("s", "ann", last=0.0, idle_limit=60 * MIN)]
    tickets = [ticket("b", "bob", since=1), ticket("c", "cat", since=2)]
    result = plan(policy, tickets, running, {}, eta.Turnover(), {}, 1, now=10 * MIN)
    assert [t.key for t in result.order] == ["b", "c"]
    assert result.wait("b") == pytest.approx(50 * MIN)  # ann's server is culled at 60 min
    # c then waits for b's server, which runs at most its idle limit when used.
    tickets = [
        ticket("b", "bob", since=1, idle_limit=30 * MIN),
        ticket("c", "cat", since=2, idle_limit=30 * MIN),
    ]
    result = plan(policy, tickets, running, {}, eta.Turnover(), {}, 1, now=10 * MIN)
    assert result.wait("c") == pytest.approx(80 * MIN)
    assert result.line("b") == "1st in the GPU queue, about 50 min"
    assert result.line("c") == "2nd in the GPU queue, about 80 min"


def test_without_any_limit_or_turnover_nobody_can_say():
    result = plan(
        load_policy(), [ticket("b", "bob")], [session("s", "ann")], {}, eta.Turnover(), {}, 1, 0.0
    )
    assert result.wait("b") is None
    assert "no estimate yet" in result.line("b")


def test_a_request_held_by_its_groups_quota_waits_for_its_own_groups_gpu():
    policy = load_policy(groups={"a": {"quota": 1}, "b": {"quota": 1}}, borrowing=False)
    running = [
        session("a1", "ann", "a", last=0.0, idle_limit=90 * MIN),
        session("b1", "bea", "b", last=0.0, idle_limit=30 * MIN),
    ]
    result = plan(policy, [ticket("a2", "abe", "a")], running, {}, eta.Turnover(), {}, 2, 0.0)
    # b's GPU frees first, but a's request may only take a's.
    assert result.wait("a2") == pytest.approx(90 * MIN)
    assert result.verdicts["a2"].status == "held"
    assert result.line("a2").endswith("(group a uses its quota of 1 GPU)")


def test_the_turnover_counts_running_sessions_so_long_ones_are_not_forgotten():
    ended = [10 * MIN] * 10
    short = eta.Turnover.of(ended)
    assert short.residual(0.0) == pytest.approx(10 * MIN)
    # Twelve more sessions have run for 2 h and still do: most sessions run longer than the
    # ended ones, at least as long as those have.
    long = short.with_running([(120 * MIN, 120 * MIN)] * 12)
    assert long.residual(0.0) == pytest.approx(120 * MIN)
    # A session in use at 30 min outlived every ended one: it is expected to run on.
    assert short.residual(30 * MIN) == pytest.approx(10 * MIN)
    assert eta.Turnover.of(ended[:3]).residual(0.0) is None  # too few to say


def test_the_turnover_reads_sessions_still_in_use_at_that_age():
    # Half the sessions were used 5 min then left idle to a 60 min cull, half used 50 min.
    ended = [(5 * MIN, 65 * MIN)] * 10 + [(50 * MIN, 50 * MIN)] * 10
    turnover = eta.Turnover.of(ended)
    # In use at 20 min: one of the 50 min ones, 30 min left (not the idle ones' 45).
    assert turnover.residual(20 * MIN) == pytest.approx(30 * MIN)


def test_people_ahead_who_would_give_up_leave_the_line():
    policy = load_policy()
    running = [session("s", "ann", last=0.0, idle_limit=60 * MIN)]
    tickets = [
        ticket("b", "bob", since=0, gives_up=10 * MIN, idle_limit=60 * MIN),
        ticket("c", "cat", since=1, idle_limit=60 * MIN),
    ]
    result = plan(policy, tickets, running, {}, eta.Turnover(), {}, 1, now=0.0)
    assert result.wait("c") == pytest.approx(60 * MIN)  # bob will have given up by then
    assert result.wait("b") == pytest.approx(10 * MIN)  # "not before giving up"


def test_newcomers_of_a_lighter_group_are_expected_to_go_first():
    policy = load_policy(groups={"red": {}, "blue": {}})
    usage = {("red", "ann"): fairshare_usage(1000.0), ("blue", "bea"): fairshare_usage(10.0)}
    running = [session("s", "ann", "red", last=0.0, idle_limit=30 * MIN)]
    tickets = [ticket("r", "rob", "red", idle_limit=30 * MIN)]
    alone = plan(policy, tickets, running, usage, eta.Turnover(), {}, 1, now=0.0)
    # Blue people asked twice this past hour: expected again at 15 and 45 min from now, each
    # ahead of the red request (blue used less), each holding the GPU 30 min.
    arrivals = eta.Arrivals.of(
        [eta.Arrival(-10 * MIN, "blue"), eta.Arrival(-40 * MIN, "blue")], 0.0
    )
    crowded = plan(
        policy, tickets, running, usage, eta.Turnover(), {}, 1, now=0.0, arrivals=arrivals
    )
    assert alone.wait("r") == pytest.approx(30 * MIN)
    assert crowded.wait("r") == pytest.approx(90 * MIN)


def fairshare_usage(value: float):
    from mesosspawner.gpuqueue.fairshare import Usage

    return Usage(value, 0.0)
