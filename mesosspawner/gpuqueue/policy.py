"""The GPU queue's rules as plain data: groups with shares, quotas and limits, people's quotas,
and the sessions and waiting requests the rules are applied to.

Pure. ``load_policy`` validates what the admin wrote (``c.MesosSpawner.gpu_*``) once, with
errors naming the setting and the value; everything else in ``gpuqueue`` takes a
``QueuePolicy`` and plain ``Ticket``/``Session`` records, and the time as a number.

Words used throughout:

* a **share** is a group's (or a person's, within a group) weight in the fair-share order;
* a group's **quota** is its nominal number of GPUs: always its own, lent to others while idle;
* a group's **limit** is its hard ceiling, borrowing included (None: no ceiling);
* a person's **quota** is their hard ceiling, whatever their group has;
* a **ticket** is a GPU request waiting in the queue; a **session** is a running GPU server.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

ORDERS = ("fairshare", "fifo")
DEFAULT_GROUP = "others"


@dataclass(frozen=True)
class GroupPolicy:
    """One group's weight, nominal quota (GPUs, None = none of its own) and hard limit."""

    name: str
    share: float = 1.0
    quota: int | None = None
    limit: int | None = None


@dataclass(frozen=True)
class QueuePolicy:
    """Everything the GPU queue decides by. The defaults give one fair-share queue for all,
    without quotas: a hub that configures nothing orders GPU requests by people's usage."""

    groups: tuple[GroupPolicy, ...] = ()
    default_group: str = DEFAULT_GROUP  # the group of people in none of ``groups``
    user_shares: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    user_quota: int | None = None  # every person's GPU ceiling (None: none)
    user_quotas: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    half_life: float = 24 * 3600.0  # seconds for past usage to count half
    borrowing: bool = True  # groups may use other groups' idle quota
    reclaim_idle_seconds: float = 600.0  # a borrowed server's idle deadline when owners wait
    reclaim_active: bool = False  # admin opt-in: take borrowed servers back even when active
    warning_seconds: float = 600.0  # the person is warned this long before a cull
    # A server with no activity reported for this long counts as idle in the ETA (JupyterHub
    # learns of activity every JUPYTERHUB_ACTIVITY_INTERVAL, 300 s by default).
    quiet_after: float = 360.0
    order: str = "fairshare"  # or "fifo": first come, first served (the benchmark's baseline)

    def group(self, name: str) -> GroupPolicy:
        for g in self.groups:
            if g.name == name:
                return g
        return GroupPolicy(name)

    def group_for(self, user_groups: Collection[str]) -> str:
        """The queue group of a person in JupyterHub ``user_groups``: the first configured
        group (in the admin's order) they belong to, else ``default_group``."""
        for g in self.groups:
            if g.name in user_groups:
                return g.name
        return self.default_group

    def user_share(self, user: str) -> float:
        return float(self.user_shares.get(user, 1.0))

    def quota_of(self, user: str) -> int | None:
        return self.user_quotas.get(user, self.user_quota)


@dataclass(frozen=True)
class Ticket:
    """A GPU request waiting for its turn. ``since``: when it joined the queue."""

    key: str
    user: str
    group: str
    gpus: int
    since: float
    profile: str = ""
    server: str = ""
    # The limits the server will run under (its profile's): the ETA of those behind it.
    idle_limit: float | None = None
    max_age: float | None = None
    gives_up: float | None = None  # when the spawn stops waiting (JupyterHub's start_timeout)


@dataclass(frozen=True)
class Session:
    """A running GPU server: who holds how many GPUs since when, its last activity, and the
    limits of its profile (None: no limit)."""

    key: str
    user: str
    group: str
    gpus: int
    started: float
    last_activity: float
    idle_limit: float | None = None
    max_age: float | None = None
    profile: str = ""
    server: str = ""


@dataclass(frozen=True)
class GpuClaim:
    """What a spawner tells the framework about a GPU request, besides its resources: whose
    it is, the person's JupyterHub groups, the profile and its limits, and how long the spawn
    waits (its start_timeout)."""

    user: str
    server: str = ""
    groups: tuple[str, ...] = ()
    profile: str = ""
    idle_limit: float | None = None
    max_age: float | None = None
    patience: float | None = None


# ---------------------------------------------------------------------------- the admin's config


def _number(where: str, value: Any, *, minimum: float = 0.0, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where} must be a number, not {value!r}")
    if value < minimum:
        raise ValueError(f"{where} must be >= {minimum:g}, not {value!r}")
    return value


def _gpus(where: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where} must be a whole number of GPUs >= 0 (or None), not {value!r}")
    return value


def load_groups(raw: Mapping[str, Any], where: str = "gpu_groups") -> tuple[GroupPolicy, ...]:
    """``{"vision": {"share": 1, "quota": 2, "limit": 4}, ...}`` as GroupPolicy, in order."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a dict of group name -> {{share, quota, limit}}")
    out = []
    for name, spec in raw.items():
        here = f"{where}[{name!r}]"
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: group names must be non-empty strings, not {name!r}")
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            raise ValueError(f"{here} must be a dict with share, quota and/or limit")
        unknown = sorted(str(k) for k in spec if k not in ("share", "quota", "limit"))
        if unknown:
            raise ValueError(
                f"{here}: unknown key(s) {', '.join(unknown)} (known: share, quota, limit)"
            )
        share = _number(f"{here}.share", spec.get("share", 1.0))
        if share <= 0:
            raise ValueError(f"{here}.share must be > 0, not {share!r}")
        quota = _gpus(f"{here}.quota", spec.get("quota"))
        limit = _gpus(f"{here}.limit", spec.get("limit"))
        if quota is not None and limit is not None and limit < quota:
            raise ValueError(f"{here}: limit {limit} is below its quota {quota}")
        out.append(GroupPolicy(name, float(share), quota, limit))
    return tuple(out)


def load_policy(
    *,
    groups: Mapping[str, Any] | None = None,
    default_group: str = DEFAULT_GROUP,
    user_shares: Mapping[str, Any] | None = None,
    user_quota: Any = None,
    user_quotas: Mapping[str, Any] | None = None,
    half_life: Any = 24 * 3600.0,
    borrowing: bool = True,
    reclaim_idle_seconds: Any = 600.0,
    reclaim_active: bool = False,
    warning_seconds: Any = 600.0,
    quiet_after: Any = 360.0,
    order: str = "fairshare",
) -> QueuePolicy:
    """A validated QueuePolicy; ``ValueError`` names the ``gpu_*`` setting that is wrong."""
    if not isinstance(default_group, str) or not default_group:
        raise ValueError(f"gpu_default_group must be a non-empty string, not {default_group!r}")
    shares = {}
    for user, share in (user_shares or {}).items():
        value = _number(f"gpu_user_shares[{user!r}]", share)
        if value <= 0:
            raise ValueError(f"gpu_user_shares[{user!r}] must be > 0, not {share!r}")
        shares[str(user)] = float(value)
    quotas = {str(u): _gpus(f"gpu_user_quotas[{u!r}]", q) for u, q in (user_quotas or {}).items()}
    life = _number("gpu_usage_half_life", half_life)
    if life <= 0:
        raise ValueError(f"gpu_usage_half_life must be > 0 seconds, not {half_life!r}")
    if order not in ORDERS:
        raise ValueError(f"gpu_queue_order must be one of {', '.join(ORDERS)}, not {order!r}")
    return QueuePolicy(
        groups=load_groups(groups or {}),
        default_group=default_group,
        user_shares=MappingProxyType(shares),
        user_quota=_gpus("gpu_user_quota", user_quota),
        user_quotas=MappingProxyType({u: q for u, q in quotas.items() if q is not None}),
        half_life=float(life),
        borrowing=bool(borrowing),
        reclaim_idle_seconds=float(_number("gpu_reclaim_idle_seconds", reclaim_idle_seconds)),
        reclaim_active=bool(reclaim_active),
        warning_seconds=float(_number("gpu_cull_warning_seconds", warning_seconds)),
        quiet_after=float(_number("gpu_quiet_after", quiet_after)),
        order=order,
    )


def limit_or_none(seconds: Any) -> float | None:
    """A profile's idle or max-age limit: 0 or None means no limit."""
    if seconds is None:
        return None
    value = float(seconds)
    return value if value > 0 else None
