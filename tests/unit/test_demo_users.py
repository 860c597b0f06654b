"""demo_users.account_name: each demo person's Unix account, recognisable, never shared."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from mesosspawner.demo_users import PREFIX, account_name

# Debian's useradd: NAME_REGEX ^[a-z][-a-z0-9_]*$, at most 32 characters.
USERADD = re.compile(r"[a-z][-a-z0-9_]{0,31}")


def test_plain_names_keep_their_name_after_the_prefix():
    assert account_name("alice") == "demo-alice"
    assert account_name("exp-1") == "demo-exp-1"
    assert account_name("x" * 27) == "demo-" + "x" * 27


def test_other_names_get_their_letters_and_a_hash():
    name = account_name("Alice@Lab.org")
    assert re.fullmatch(r"demo-alicelaborg_[0-9a-f]{12}", name), name
    assert account_name("x" * 28).startswith("demo-xxxxxxxxxxxx_")
    assert account_name("root").startswith(PREFIX)  # never a real account's name


@given(st.text())
def test_every_account_name_is_one_useradd_accepts_with_the_prefix(hub_user):
    name = account_name(hub_user)
    assert USERADD.fullmatch(name), name
    assert name.startswith(PREFIX)


@given(st.text(), st.text())
def test_two_people_never_share_an_account(a, b):
    if a != b:
        assert account_name(a) != account_name(b)
