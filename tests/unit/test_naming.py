"""naming: escaping is safe, injective and reversible; task ids are valid and unique."""

import re

from hypothesis import given
from hypothesis import strategies as st

from mesosspawner.naming import (
    MAX_TASK_ID,
    attempt_task_id,
    escape,
    path_component,
    task_id,
    task_id_prefix,
    unescape,
)

SAFE = re.compile(r"[a-z0-9-]*")
MESOS_ID = re.compile(r"[A-Za-z0-9_.\-]+")


def test_plain_names_are_unchanged():
    assert escape("alice") == "alice"
    assert escape("bob42") == "bob42"


def test_unsafe_characters_are_hex_escaped():
    assert escape("a-b") == "a-2db"
    assert escape("A") == "-41"
    assert escape("../../etc") == "-2e-2e-2f-2e-2e-2fetc"
    assert escape("é") == "-c3-a9"
    assert escape("") == ""


def test_case_variants_do_not_collide():
    assert escape("Alice") != escape("alice")


@given(st.text())
def test_output_is_safe_and_reversible(s):
    e = escape(s)
    assert SAFE.fullmatch(e)
    assert e not in (".", "..")
    assert unescape(e) == s


@given(st.text(), st.text())
def test_escape_is_injective(a, b):
    if a != b:
        assert escape(a) != escape(b)


def test_task_id_shape():
    tid = task_id("hub1", "alice", "gpu", "3f2a")
    assert tid == "jupyter.hub1.alice.gpu.3f2a"
    assert MESOS_ID.fullmatch(task_id("h", "Ann O'Brien", "", "n"))


@given(st.text(max_size=400), st.text(max_size=400), st.text(min_size=1, max_size=40))
def test_task_ids_are_valid_mesos_ids(user, server, nonce):
    tid = task_id("hub", user, server, nonce)
    assert MESOS_ID.fullmatch(tid)
    assert len(tid) <= MAX_TASK_ID
    assert task_id("hub", user, server, nonce) == tid  # deterministic


def test_fields_cannot_be_shifted_into_each_other():
    # With '-' as the separator these two would be ambiguous; '.' never occurs in a field.
    assert task_id("h", "a", "b-c", "n") != task_id("h", "a-b", "c", "n")
    assert task_id("h", "a", "", "n") != task_id("h", "", "a", "n")


def test_long_ids_are_truncated_but_stay_distinct():
    long = "x" * 500
    a = task_id("hub", long, "one", "n1")
    b = task_id("hub", long, "two", "n1")
    c = task_id("hub", long, "one", "n2")
    assert len({a, b, c}) == 3
    assert all(len(t) <= MAX_TASK_ID for t in (a, b, c))


@given(st.text(max_size=400), st.integers(min_value=0, max_value=10_000))
def test_relaunch_ids_are_fresh_valid_and_keep_the_hub_prefix(user, attempt):
    first = task_id("hub", user, "", "n1")
    tid = attempt_task_id(first, attempt)
    assert MESOS_ID.fullmatch(tid) and len(tid) <= MAX_TASK_ID
    assert tid.startswith(task_id_prefix("hub"))  # orphan cleanup still recognises it
    assert (tid == first) == (attempt == 0)
    assert tid != attempt_task_id(first, attempt + 1)


@given(st.text())
def test_path_component_is_one_safe_component(s):
    p = path_component(s)
    assert "/" not in p and "\x00" not in p
    assert p not in (".", "..")
    assert not p.startswith("-")  # never read as an option by a shell command


@given(st.text(), st.text())
def test_path_component_is_injective(a, b):
    if a != b:
        assert path_component(a) != path_component(b)
