"""Who a notebook runs as: the rules, decided from plain values (pure).

A notebook runs as a system account: ``system_user`` (default: the hub user's name), which must
be in the hub host's passwd (the agents run tasks as the same account, by name, so an account the
hub cannot see is a typo or a person without one, never something to guess). Its uid must be at
least ``min_uid`` (1000 by default, Debian's first ordinary account): below are system accounts
such as ``daemon`` (uid 1), whose files and sockets a notebook must not own. uid 0 is refused
unless ``allow_root``. The spawner looks the account up (``Account``) and asks ``resolve``.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MIN_UID = 1000


@dataclass(frozen=True)
class Account:
    """A passwd entry, as plain data."""

    name: str
    uid: int
    gid: int
    home: str = ""
    shell: str = ""


class IdentityRefused(ValueError):
    """The spawn cannot run as the account it resolves to; the message says what to change."""


def resolve(
    hub_user: str,
    name: str,
    account: Account | None,
    uid: int | None,
    gid: int | None,
    *,
    min_uid: int = DEFAULT_MIN_UID,
    allow_root: bool = False,
) -> tuple[str, int, int | None]:
    """(system user name, uid, gid) for ``hub_user``'s notebook, run as account ``name``
    (``account``: its passwd entry on the hub host, None if there is none); ``uid``/``gid``
    override the account's ids (the Docker ``user`` parameter). Raises IdentityRefused."""
    whose = f"{hub_user}'s notebook"
    if account is None:
        raise IdentityRefused(
            f"Refusing to start {whose}: the system user {name!r} is not in this hub host's"
            f" passwd (getpwnam({name!r}) found no account). Create the account (the agents run"
            " notebooks as it), or map people to accounts with c.MesosSpawner.system_user"
        )
    uid = account.uid if uid is None else uid
    gid = account.gid if gid is None else gid
    # command.user (a name) decides for plain and Mesos-containerizer tasks, the uid for
    # Docker: either one being root is a root notebook.
    root = None
    if uid == 0:
        root = "uid 0"
    elif name == "root":
        root = "system user 'root'"
    elif account.uid == 0:
        root = f"system user {name!r}, which is uid 0 on this host"
    if root:
        if not allow_root:
            raise IdentityRefused(
                f"Refusing to run {whose} as root ({root}); choose a non-root system_user/uid,"
                " or set c.MesosSpawner.allow_root = True"
            )
        return name, uid, gid
    low = [(what, n) for what, n in (("uid", uid), (f"{name!r}'s uid", account.uid)) if n < min_uid]
    if low:
        what, n = low[0]
        raise IdentityRefused(
            f"Refusing to run {whose} as {name!r}: {what} {n} is below c.MesosSpawner.min_uid"
            f" = {min_uid}, the range of system accounts (daemon is uid 1). Use a person's own"
            " account, or lower min_uid if this one is meant for notebooks"
        )
    return name, uid, gid


__all__ = ["DEFAULT_MIN_UID", "Account", "IdentityRefused", "resolve"]
