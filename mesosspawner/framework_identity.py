"""Who the hub is to Mesos across restarts: the framework id file, and what Mesos says when the
hub comes back changed or too late.

The file keeps the framework id a restarted hub re-subscribes with, and the principal and user
it was registered with. Mesos 1.11 (``validateUpdate`` after ``preserveImmutableFields`` in
``src/master/``) refuses a re-subscription with another principal, and keeps the first user and
checkpoint whatever a re-subscription says; a framework whose stream stayed down longer than
its ``failover_timeout`` is removed with all its tasks ("Framework has been removed"). The
functions below turn each case into a sentence for the admin (and the person) that names what
changed and what to do.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .availability import duration_words
from .mesos.detector import redact

if TYPE_CHECKING:
    from .framework import FrameworkConfig


@dataclass(frozen=True)
class SavedIdentity:
    """What the id file says: the framework id, and (when the file has them) the principal and
    user Mesos registered that framework with."""

    framework_id: str
    principal: str | None = None
    user: str | None = None
    known: frozenset[str] = frozenset()  # which of principal/user the file recorded


class FrameworkIdFile:
    """The framework id file (``c.MesosSpawner.framework_id_file``) of one master."""

    def __init__(self, path: str | None, master: str, log: logging.Logger) -> None:
        self.path = path
        self.master = master
        self.log = log

    def load(self) -> SavedIdentity | None:
        if not self.path or not os.path.exists(self.path):
            return None
        try:
            with open(self.path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            self.log.warning("Ignoring unreadable framework id file %s: %s", self.path, e)
            return None
        # Stored without a zk:// password (older files have it): a new password is the same
        # cluster.
        masters = (None, self.master, redact(self.master))
        if not isinstance(data, dict) or data.get("master") not in masters:
            return None
        framework_id = data.get("framework_id")
        if not framework_id:
            return None
        return SavedIdentity(
            framework_id,
            principal=data.get("principal"),
            user=data.get("user"),
            known=frozenset(k for k in ("principal", "user") if k in data),
        )

    def save(self, framework_id: str, principal: str | None, user: str) -> None:
        if not self.path:
            return
        tmp = f"{self.path}.tmp"
        data = {
            "framework_id": framework_id,
            "master": redact(self.master),
            "principal": principal,
            "user": user,
        }
        try:
            with open(tmp, "w") as f:
                json.dump(data, f)
            os.replace(tmp, self.path)
        except OSError as e:
            self.log.error("Could not persist framework id to %s: %s", self.path, e)

    def forget(self) -> None:
        if self.path and os.path.exists(self.path):
            os.unlink(self.path)


# What the hub asks of Mesos: several roles, GPU agents' offers, to hear of tasks on a
# partitioned agent (TASK_UNREACHABLE rather than lost) and of kills in progress.
CAPABILITIES = ("MULTI_ROLE", "GPU_RESOURCES", "PARTITION_AWARE", "TASK_KILLING_STATE")


def framework_info(config: FrameworkConfig, principal: str | None) -> dict:
    """The FrameworkInfo the hub subscribes with (checkpointed: tasks outlive an agent
    restart; ``failover_timeout``: how long they outlive the hub)."""
    info: dict = {
        "user": config.user,
        "name": config.name,
        "roles": list(config.roles),
        "failover_timeout": config.failover_timeout,
        "checkpoint": True,
        "capabilities": [{"type": t} for t in CAPABILITIES],
    }
    if principal:
        info["principal"] = principal
    if config.webui_url:
        info["webui_url"] = config.webui_url
    return info


def _principal(value: str | None) -> str:
    return f"principal {value!r}" if value else "no principal"


def _start_anew(path: str | None) -> str:
    where = f"remove {path}" if path else "remove the framework id file"
    return (
        f"{where} and restart the hub, which then registers a new framework (the old one's "
        "notebooks keep running until its failover_timeout passes or an operator tears it down)"
    )


def principal_refused(
    saved: SavedIdentity | None,
    principal: str | None,
    framework_id: str | None,
    mesos_message: str,
    path: str | None,
) -> str:
    """Mesos refused the re-subscription because the principal changed (pure)."""
    if saved is not None and "principal" in saved.known:
        was = f"registered with {_principal(saved.principal)}"
        back = (
            f"set c.MesosSpawner.principal back to {saved.principal!r}"
            if saved.principal
            else "unset c.MesosSpawner.principal"
        )
    else:
        was = "registered with another principal"
        back = "set c.MesosSpawner.principal back to the one it was registered with"
    return (
        f"Mesos refuses this hub's framework {framework_id}: {mesos_message.rstrip('.')}. "
        f"The framework was {was}; this hub now uses {_principal(principal)} "
        f"(c.MesosSpawner.principal). Mesos never lets a framework change its principal: {back}, "
        f"or {_start_anew(path)}. Until then no notebook can start."
    )


def user_kept(
    saved: SavedIdentity | None, user: str, framework_id: str, path: str | None
) -> str | None:
    """A warning when the hub re-subscribed with another FrameworkInfo.user, which Mesos
    ignores (it keeps the first); None when nothing changed or nothing is known (pure)."""
    if saved is None or "user" not in saved.known or saved.framework_id != framework_id:
        return None
    if saved.user is None or saved.user == user:
        return None
    return (
        f"Mesos keeps FrameworkInfo.user {saved.user!r} for this hub's framework {framework_id}: "
        f"c.MesosSpawner.framework_user is now {user!r}, but a framework's user never changes "
        f"(Mesos ignores the new one). Tasks that name no user of their own run as "
        f"{saved.user!r}. To use {user!r}, {_start_anew(path)}."
    )


def removed(framework_id: str | None, failover_timeout: float) -> str:
    """Why the tasks of a framework Mesos removed are gone (pure)."""
    return (
        f"Mesos removed this hub's framework {framework_id} and killed its notebooks: the hub "
        f"was away longer than its failover_timeout ({duration_words(failover_timeout)}, "
        "c.MesosSpawner.failover_timeout), or an operator tore the framework down"
    )
