"""naming: escaping is safe, injective and reversible; task ids are valid and unique."""

import re

from hypothesis import given
from hypothesis import strategies as st

from mesosspawner.naming import (
    MAX_TASK_ID,
    attempt_task_id,
    escape,
    is_own_task,
    legacy_task_id,
    path_component,
    safe_name,
    task_id,
    task_id_prefix,
    task_id_prefixes,
    unescape,
    unsafe_name,
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


# ---------------------------------------------------------------------------- the safe scheme


def test_safe_names_are_kept_as_they_are():
    for name in ("alice", "exp-1", "bob42", "a-b-c", "7"):
        assert safe_name(name) == name
    # The bug this scheme fixes: a named server "exp-1" showed as "exp-2d1" in Mesos.
    assert task_id("jupyterhub", "alice", "exp-1", "ab12") == "jupyter.jupyterhub.alice.exp-1.ab12"
    assert safe_name("") == ""


def test_names_needing_escapes_get_a_marked_escaped_form():
    assert safe_name("Alice") == "x---41lice"
    assert safe_name("alice@lab.org") == "x--alice-40lab-2eorg"
    assert safe_name("a--b") == "x--a-2d-2db"  # "--" is the mark: never kept
    assert safe_name("-a") == "x---2da" and safe_name("a-") == "x--a-2d"
    assert safe_name("../etc") == "x---2e-2e-2fetc"


@given(st.text())
def test_safe_name_output_is_safe_and_reversible(s):
    n = safe_name(s)
    assert SAFE.fullmatch(n)
    assert n not in (".", "..") and not n.startswith("-")
    assert unsafe_name(n) == s


@given(st.text(), st.text())
def test_safe_name_is_injective(a, b):
    if a != b:
        assert safe_name(a) != safe_name(b)


@given(st.from_regex(r"[a-z0-9]+(-[a-z0-9]+)*", fullmatch=True), st.text())
def test_an_escaped_name_never_equals_a_kept_one(kept, other):
    # The mixed case hypothesis rarely reaches through st.text() alone.
    if kept != other:
        assert safe_name(kept) == kept
        assert safe_name(other) != kept


def test_unsafe_name_refuses_what_safe_name_cannot_produce():
    for text in ("x--alice", "Alice", "a--b", "x--", "x---2"):
        try:
            unsafe_name(text)
        except ValueError:
            continue
        raise AssertionError(f"{text!r} was accepted")


def test_old_task_ids_are_still_this_hubs():
    """Migration: a task launched under the legacy names (saved in a spawner's state, or an
    orphan of a crashed hub) is still recognised as this hub's."""
    old = legacy_task_id("lab-hub", "alice", "exp-1", "ab12")
    new = task_id("lab-hub", "alice", "exp-1", "ab12")
    assert old == "jupyter.lab-2dhub.alice.exp-2d1.ab12"
    assert new == "jupyter.lab-hub.alice.exp-1.ab12"
    assert is_own_task(old, "lab-hub") and is_own_task(new, "lab-hub")
    assert not is_own_task(task_id("other", "alice", "", "n"), "lab-hub")
    assert task_id_prefixes("jupyterhub") == ("jupyter.jupyterhub.",)  # both schemes agree


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
