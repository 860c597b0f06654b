"""Who localmesos lets a task run as: its stand-in for a real master's ``run_tasks`` ACL.

localmesos has no authentication: anyone who reaches its port can launch tasks, and a localmesos
started as root (the demo) runs them as whichever user they name. So by default it refuses a task
that would run as root, as a real cluster's ACLs should (``--allow-root-tasks`` lifts it), and with
``--task-users`` it runs tasks only as the users those patterns name (the demo: its ``demo-*``
accounts). Refusals are TASK_ERROR with REASON_TASK_UNAUTHORIZED from the master, as Mesos's own.

Who a task runs as, as the agent would run it: the Docker ``user`` parameter for the Docker
containerizer (none: the image's default user, which may be root; ``privileged`` is root's
power), else ``command.user``, else the framework's user. Pure: the accounts come from
``lookup`` (``pwd`` on this machine, which the agents share).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# name or numeric uid -> (name or None, uid), or None when this machine has no such account.
Lookup = Callable[[str], "tuple[str | None, int] | None"]


@dataclass(frozen=True)
class TaskUsers:
    """The master's policy: ``allow_root`` (``--allow-root-tasks``) and ``patterns``
    (``--task-users``; empty: any user but root)."""

    allow_root: bool = False
    patterns: tuple[str, ...] = ()


def runs_as(task: dict, framework_user: str) -> tuple[str | None, str]:
    """(user the task runs as, or None for an image's default user; what decides it)."""
    container = task.get("container") or {}
    command = task.get("command") or {}
    docker = container.get("docker") or {}
    if container.get("type", "MESOS") == "DOCKER" and docker.get("image"):
        users = [
            str(p.get("value", ""))
            for p in docker.get("parameters") or []
            if isinstance(p, dict) and p.get("key") == "user"
        ]
        if not users:
            return None, "the image's default user (no docker parameter user)"
        return users[-1].split(":", 1)[0], "its docker parameter user"
    if command.get("user"):
        return str(command["user"]), "command.user"
    return framework_user, "the framework's user"


def refusal(task: dict, framework_user: str, policy: TaskUsers, lookup: Lookup) -> str | None:
    """Why ``task`` may not run under ``policy``, or None. The message names the task, the user
    and the flag that would allow it."""
    tid = (task.get("task_id") or {}).get("value", "")
    user, source = runs_as(task, framework_user)
    privileged = bool(((task.get("container") or {}).get("docker") or {}).get("privileged"))
    account = lookup(user) if user else None
    if not policy.allow_root:
        root = None
        if user is None:
            root = f"it runs as {source}, which may be root"
        elif privileged:
            root = "it asks for a privileged Docker container"
        elif user == "root" or (account is not None and account[1] == 0):
            root = f"{source} {user!r} is root"
        if root:
            return (
                f"Not authorized to launch task '{tid}' as root: {root}. localmesos refuses"
                " tasks that would run as root unless started with --allow-root-tasks"
            )
    if policy.patterns:
        name = account[0] if account is not None else user
        if name is None or not _matches(name, policy.patterns):
            return (
                f"Not authorized to launch task '{tid}' as user {name or user!r} ({source}):"
                f" this localmesos runs tasks only as {', '.join(policy.patterns)} (--task-users)"
            )
    return None


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def pwd_lookup(user: str) -> tuple[str | None, int] | None:
    """``Lookup`` on this machine's passwd (a numeric user is a uid, named if it has a name)."""
    import pwd

    try:
        if user.isdigit():
            uid = int(user)
            try:
                return pwd.getpwuid(uid).pw_name, uid
            except KeyError:
                return None, uid
        pw = pwd.getpwnam(user)
    except KeyError:
        return None
    return pw.pw_name, pw.pw_uid
