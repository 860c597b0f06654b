"""The traits of the GPU queue: set them as ``c.MesosSpawner.gpu_*``.

A part of ``MesosSpawner`` (a base class, like ``traits.FrameworkTraits``). The queue's rules
(groups, shares, quotas, half-life, reclaiming) are the hub's, read once into the shared
framework's ``QueuePolicy``; a server's idle and max-age limits are its own, so a profile sets
them with ``mesosspawner_override`` (``{"gpus": 1, "gpu_idle_timeout": 3600}``).
"""

from __future__ import annotations

import os

from traitlets import (
    Bool,
    CaselessStrEnum,
    Dict,
    Float,
    Int,
    TraitError,
    Unicode,
    default,
    validate,
)
from traitlets.config import LoggingConfigurable

from .policy import (
    DEFAULT_GROUP,
    ORDERS,
    GpuClaim,
    QueuePolicy,
    limit_or_none,
    load_groups,
    load_policy,
)

STATE_FILE_NAME = "mesosspawner-gpu-queue.json"


def state_file_beside(framework_id_file: str) -> str:
    """The GPU queue's state file: in the directory of the framework id file."""
    return os.path.join(os.path.dirname(framework_id_file) or ".", STATE_FILE_NAME)


class GpuQueueTraits(LoggingConfigurable):
    """Who gets the next free GPU, how many each may hold, and when GPU servers are culled."""

    gpu_groups = Dict(
        help="""GPU groups by JupyterHub group name: `{"vision": {"share": 1, "quota": 2,
        "limit": 4}, ...}`. `share`: weight in the fair-share order (default 1); `quota`: GPUs
        the group always has (lent to others while idle; none by default); `limit`: hard
        ceiling, borrowing included (none by default). A person counts in the first of these
        groups (in this order) they belong to, else in `gpu_default_group`.""",
    ).tag(config=True)

    @validate("gpu_groups")
    def _check_groups(self, proposal):
        try:
            load_groups(proposal["value"])
        except ValueError as e:
            raise TraitError(str(e)) from None
        return proposal["value"]

    gpu_default_group = Unicode(
        DEFAULT_GROUP,
        help="""The GPU group of people in none of `gpu_groups` (configure its share or quota
        by naming it in `gpu_groups`).""",
    ).tag(config=True)

    gpu_user_shares = Dict(
        help="Fair-share weight of a person within their group, by user name (default 1)."
    ).tag(config=True)

    gpu_user_quota = Int(
        None,
        allow_none=True,
        help="""GPUs a person may hold and wait for at once, a hard ceiling (None: no
        ceiling). A request beyond it fails at once, naming the quota.""",
    ).tag(config=True)

    gpu_user_quotas = Dict(
        help="Per-person GPU quotas by user name, overriding `gpu_user_quota`."
    ).tag(config=True)

    gpu_usage_half_life = Float(
        24 * 3600.0,
        help="""Seconds after which past GPU use counts half in the fair-share order (Slurm's
        PriorityDecayHalfLife).""",
    ).tag(config=True)

    gpu_queue_order = CaselessStrEnum(
        list(ORDERS),
        "fairshare",
        help="""`fairshare`: groups and people who used less of their share go first;
        `fifo`: first come, first served (quotas apply either way).""",
    ).tag(config=True)

    gpu_borrowing = Bool(
        True,
        help="""Groups may use GPUs of other groups' quotas while those are idle. The borrowed
        servers are the first to go, once idle for `gpu_reclaim_idle_seconds`, when an owning
        group waits.""",
    ).tag(config=True)

    gpu_reclaim_idle_seconds = Float(
        600.0,
        help="""When a group waits for GPUs of its quota that others borrowed: seconds a
        borrowed GPU server may stay unused before it is culled to give its GPU back.""",
    ).tag(config=True)

    gpu_reclaim_active = Bool(
        False,
        help="""Take borrowed GPU servers back even while they are in use (after the warning)
        when their owners wait. Off: a borrowed server in use is never culled for that.""",
    ).tag(config=True)

    gpu_cull_warning_seconds = Float(
        600.0,
        help="""Seconds before a GPU server is culled (idle, max age, reclaimed) that its owner
        is warned on the hub's pages; no cull comes sooner after the warning.""",
    ).tag(config=True)

    gpu_activity_quiet_seconds = Float(
        360.0,
        help="""A GPU server with no activity reported for this long counts as idle in queue
        estimates (JupyterHub hears of activity every JUPYTERHUB_ACTIVITY_INTERVAL, 300 s by
        default).""",
    ).tag(config=True)

    gpu_idle_timeout = Float(
        0.0,
        help="""Seconds a GPU server may stay unused before it is culled (0: never). Per
        profile: `mesosspawner_override: {"gpu_idle_timeout": 3600}`. Activity is JupyterHub's
        (set JUPYTERHUB_ACTIVITY_INTERVAL in `environment` well below this).""",
    ).tag(config=True)

    gpu_max_age = Float(
        0.0,
        help="Seconds a GPU server may run at all before it is culled (0: no limit). Per profile.",
    ).tag(config=True)

    gpu_queue_state_file = Unicode(
        help=f"""Where the GPU queue keeps its state across hub restarts (usage, turnover,
        running GPU servers) and a live snapshot for the admins' page: JSON. Default:
        `{STATE_FILE_NAME}` next to the framework id file.""",
    ).tag(config=True)

    @default("gpu_queue_state_file")
    def _default_state_file(self) -> str:
        return state_file_beside(self.framework_id_file)

    gpu_queue_tick = Float(
        5.0, help="Seconds between looks at the GPU queue (lines, warnings, culls)."
    ).tag(config=True)

    def gpu_queue_policy(self) -> QueuePolicy:
        """The hub's GPU queue rules from these traits (ValueError names a bad one)."""
        return load_policy(
            groups=self.gpu_groups,
            default_group=self.gpu_default_group,
            user_shares=self.gpu_user_shares,
            user_quota=self.gpu_user_quota,
            user_quotas=self.gpu_user_quotas,
            half_life=self.gpu_usage_half_life,
            borrowing=self.gpu_borrowing,
            reclaim_idle_seconds=self.gpu_reclaim_idle_seconds,
            reclaim_active=self.gpu_reclaim_active,
            warning_seconds=self.gpu_cull_warning_seconds,
            quiet_after=self.gpu_activity_quiet_seconds,
            order=self.gpu_queue_order.lower(),
        )

    def gpu_preview(self, queue, gpus: int, profile: str, override) -> tuple[str, str] | None:
        """For the options form: ("never", why) when this person's quota refuses ``gpus`` now,
        ("wait", "you would be 3rd in the GPU queue, about 40 min") when people wait."""
        if not gpus:
            return None

        def limit(name: str):
            return limit_or_none(override.get(name, getattr(self, name)))

        claim = GpuClaim(
            user=self.user.name,
            server=self.name or "",
            groups=tuple(self._user_groups()),
            profile=profile,
            idle_limit=limit("gpu_idle_timeout"),
            max_age=limit("gpu_max_age"),
            patience=self.start_timeout,
        )
        return queue.preview(claim, gpus)

    def gpu_claim(self, user_groups: list[str], profile: str | None, patience: float) -> GpuClaim:
        """This server's GPU request as the queue needs it (the spawner's user and limits)."""
        return GpuClaim(
            user=self.user.name,
            server=self.name or "",
            groups=tuple(user_groups),
            profile=profile or "",
            idle_limit=limit_or_none(self.gpu_idle_timeout),
            max_age=limit_or_none(self.gpu_max_age),
            patience=patience,
        )
