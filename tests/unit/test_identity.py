"""identity.resolve: who a notebook may run as (issue 15 item 8)."""

from __future__ import annotations

import pytest

from mesosspawner.identity import Account, IdentityRefused, resolve

ALICE = Account("alice", 1001, 100, "/home/alice", "/bin/bash")
DAEMON = Account("daemon", 1, 1, "/usr/sbin", "/usr/sbin/nologin")
ROOT = Account("root", 0, 0, "/root", "/bin/bash")


def test_a_persons_account_gives_its_ids_or_the_configured_ones():
    assert resolve("alice", "alice", ALICE, None, None) == ("alice", 1001, 100)
    assert resolve("alice", "alice", ALICE, 2001, 200) == ("alice", 2001, 200)


def test_a_name_the_hub_host_does_not_know_is_refused_naming_the_lookup():
    with pytest.raises(IdentityRefused) as info:
        resolve("ghost", "ghost", None, 1001, 100)
    message = str(info.value)
    assert "'ghost'" in message and "passwd" in message and "getpwnam('ghost')" in message
    assert "system_user" in message  # how to fix it


def test_system_accounts_below_min_uid_are_refused_naming_it():
    with pytest.raises(IdentityRefused) as info:
        resolve("daemon", "daemon", DAEMON, None, None)
    message = str(info.value)
    assert "'daemon'" in message and "uid 1" in message and "min_uid = 1000" in message
    # The account decides for command.user tasks even when a uid is configured...
    with pytest.raises(IdentityRefused, match="'daemon''s uid 1 is below"):
        resolve("eve", "daemon", DAEMON, 1001, 100)
    # ... and the configured uid for Docker.
    with pytest.raises(IdentityRefused, match="uid 999 is below"):
        resolve("alice", "alice", ALICE, 999, 100)
    assert resolve("daemon", "daemon", DAEMON, None, None, min_uid=1) == ("daemon", 1, 1)


@pytest.mark.parametrize(
    "name, account, uid, why",
    [
        ("root", ROOT, None, "uid 0"),
        ("alice", ALICE, 0, "uid 0"),
        ("root", ROOT, 1001, "system user 'root'"),
        ("toor", Account("toor", 0, 0), 1001, "which is uid 0 on this host"),
    ],
)
def test_root_is_refused_unless_allowed(name, account, uid, why):
    with pytest.raises(IdentityRefused) as info:
        resolve("alice", name, account, uid, None)
    assert why in str(info.value) and "allow_root" in str(info.value)
    assert resolve("alice", name, account, uid, None, allow_root=True)[0] == name
