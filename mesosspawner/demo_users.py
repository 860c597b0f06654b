"""The demo's people: a Unix account and a home of their own, made on their first spawn.

Run as root, the demo gives every person who logs in the account ``demo-<name>`` (home
``/home/demo-<name>``), so their notebooks, files, terminals and JupyterLab layout are theirs
alone, and never root's. ``account_name`` is pure: a plain hub name (lowercase letters and
digits, single inner ``-``, at most 27 characters) is kept after the prefix; any other becomes
``demo-<its letters>_<hash>``, which no plain name can produce (plain names have no ``_``).
The prefix makes the accounts recognisable; an existing account whose comment is not
``MARKER`` was not made by the demo and is never used (the spawn fails and says so), so a demo
account can never be a real one. ``python -m mesosspawner.demo --remove`` deletes them.

Run as an ordinary user, the demo cannot make accounts: notebooks run as that user, with a home
per person under the demo's temporary directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pwd
import re
import subprocess
from collections.abc import Awaitable, Callable

from .naming import path_component

PREFIX = "demo-"
MARKER = "mesosspawner demo account"
_PLAIN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MAX_PLAIN = 27  # demo- + 27 = 32, the longest name useradd accepts


class DemoAccountError(Exception):
    """An account cannot be used; the message is for the person spawning (JupyterHub shows
    ``jupyterhub_message``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.jupyterhub_message = message


def account_name(hub_user: str) -> str:
    """The Unix account of hub user ``hub_user``: ``demo-alice``, or ``demo-al_3f9c0a1b2c4d``."""
    if _PLAIN.fullmatch(hub_user) and len(hub_user) <= _MAX_PLAIN:
        return PREFIX + hub_user
    letters = re.sub(r"[^a-z0-9]", "", hub_user.lower())[:12]
    digest = hashlib.sha256(hub_user.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{PREFIX}{letters}_{digest}"


def is_demo_account(pw: pwd.struct_passwd) -> bool:
    return pw.pw_name.startswith(PREFIX) and pw.pw_gecos.split(",")[0] == MARKER


def demo_accounts() -> list[pwd.struct_passwd]:
    """Every account the demo made on this machine."""
    return sorted((pw for pw in pwd.getpwall() if is_demo_account(pw)), key=lambda p: p.pw_name)


def ensure_account(hub_user: str) -> pwd.struct_passwd:
    """The account of ``hub_user``, made with its home when missing (needs root; blocking)."""
    name = account_name(hub_user)
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--create-home", "--user-group", "--shell", "/bin/bash"]
            + ["--comment", MARKER, name],
            capture_output=True,
            text=True,
        )
        try:
            pw = pwd.getpwnam(name)  # made now, or by a spawn of the same person just before
        except KeyError:
            raise DemoAccountError(
                f"The demo could not make the Unix account {name} for {hub_user!r}:"
                f" {result.stderr.strip() or 'useradd failed'}"
            ) from None
    if not is_demo_account(pw):
        raise DemoAccountError(
            f"The Unix account {name} exists but the demo did not make it, so it is not used"
            f" for {hub_user!r}; log in with another name"
        )
    return pw


def home_hook(*, accounts: bool, homes: str) -> Callable[[object], Awaitable[None]]:
    """A ``pre_spawn_hook`` giving each person their home (and, with ``accounts``, their own
    Unix account); notebooks then start there (``notebook_dir``)."""

    async def prepare(spawner) -> None:
        if accounts:
            pw = await asyncio.to_thread(ensure_account, spawner.user.name)
            spawner.system_user = pw.pw_name
            spawner.notebook_dir = pw.pw_dir
            return
        path = os.path.join(homes, path_component(spawner.user.name))
        await asyncio.to_thread(os.makedirs, path, exist_ok=True)
        spawner.notebook_dir = path

    return prepare


__all__ = [
    "MARKER",
    "PREFIX",
    "DemoAccountError",
    "account_name",
    "demo_accounts",
    "ensure_account",
    "home_hook",
]
