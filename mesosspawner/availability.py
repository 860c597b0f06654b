"""What the options form says about each profile right now: one plain sentence.

Pure. A person reading the form wants to know whether *this* profile starts now or makes them
wait, and why, in words about this profile only: "1 of 2 GPUs free — starts now", "All 2 GPUs
in use — you will wait, up to 5 minutes". A Spark profile's sentence also says what its jobs
can get: "Room free now; 5 of 8 CPUs and 6 of 8 GiB free for Spark executors — starts now".
The decision itself (now, wait or never) is ``placement.classify``'s; this module only words it.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import placement as plc
from . import spark
from .mesos.resources import UNRESERVED, scalar
from .mesos.state import RoleQuota
from .profiles import ProfileCapacity

__all__ = ["capacity", "duration_words"]


def duration_words(seconds: float) -> str:
    """A wait for a person: "45 seconds", "5 minutes", "2 hours" (minutes from 90 s on)."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        n = round(seconds)
        return f"{n} second{'' if n == 1 else 's'}"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} minutes"
    hours = round(minutes / 60)
    return f"{hours} hours"


def _gpus(agents: Sequence[plc.AgentCapacity], request: plc.Request) -> tuple[int, int]:
    """(free, total) whole GPUs this request could ever take: its role's and unreserved ones."""
    roles = {request.role, UNRESERVED}
    free = sum(scalar(a.free, "gpus", r) for a in agents for r in roles)
    total = sum(scalar(a.total, "gpus", r) for a in agents for r in roles)
    return int(free), int(max(total, free))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def capacity(
    request: plc.Request,
    agents: Sequence[plc.AgentCapacity],
    *,
    totals_known: bool = True,
    patience: float | None = None,
    spark_role: str | None = None,
    quota: RoleQuota | None = None,
    queue: tuple[str, str] | None = None,
) -> ProfileCapacity:
    """The form's line for one profile's ``request`` on the cluster as the framework sees it.

    ``patience``: how long a spawn waits for room (``start_timeout``), said on "wait" lines.
    ``spark_role``: a Spark profile's executors' role, whose free share the line names.
    ``quota``: the request's role's quota limits and use, when it has limits.
    ``queue``: the GPU queue's word on this person's request (``GpuQueue.preview``):
    ("never", their quota's refusal) or ("wait", "you would be 2nd in the GPU queue, ...").
    """
    line = _line(request, agents, totals_known, patience, quota, queue)
    executors = spark.role_capacity(agents, spark_role) if spark_role else None
    if executors is None or line.status in ("never", "quota") or not agents:
        return line
    # One sentence still: the executors' share goes before the verdict (" — starts now").
    head, dash, verdict = line.detail.partition(" — ")
    detail = f"{head}; {executors.describe()}{dash}{verdict}"
    return ProfileCapacity(line.status, detail, line.free_gpus, line.total_gpus)


def _line(
    request: plc.Request,
    agents: Sequence[plc.AgentCapacity],
    totals_known: bool,
    patience: float | None,
    quota: RoleQuota | None,
    queue: tuple[str, str] | None,
) -> ProfileCapacity:
    fit = plc.classify(request, agents, totals_known=totals_known, quota=quota)
    wait = "you will wait" + (f", up to {duration_words(patience)}" if patience else "")
    if queue is not None and queue[0] == "never":
        return ProfileCapacity("quota", _sentence(queue[1]))
    if queue is not None and queue[0] == "wait":
        wait = queue[1] + (f" (it waits up to {duration_words(patience)})" if patience else "")
        if fit.kind == "now":  # free GPUs, but held for people ahead or for other groups
            free, total = _gpus(agents, request)
            line = f"{free} of {total} GPU{'' if total == 1 else 's'} free — {wait}"
            return ProfileCapacity("wait", _sentence(line), free_gpus=free, total_gpus=total)
    if fit.kind == "never":
        return ProfileCapacity("never", _sentence(f"cannot start on this cluster: {fit.why}"))
    if not agents:
        return ProfileCapacity("wait", "The cluster has not answered yet — checking again soon")
    held = quota and fit.kind == "wait" and plc.quota_shortfall(request, quota, agents)
    if held:
        return ProfileCapacity("wait", _sentence(f"{held} — {wait}"))
    if not request.gpus:
        if fit.kind == "now":
            return ProfileCapacity("now", "Room free now — starts now")
        return ProfileCapacity("wait", _sentence(f"{plc.shortfall(request, agents)} — {wait}"))
    free, total = _gpus(agents, request)
    gpus = f"{free} of {total} GPU{'' if total == 1 else 's'} free"
    if fit.kind == "now":
        line = f"{gpus} — starts now"
    elif free == 0:
        every = "the only GPU is" if total == 1 else f"all {total} GPUs are"
        line = f"{every} in use — {wait}"
    elif free < request.gpus:
        line = f"{gpus}, {request.gpus} needed — {wait}"
    else:
        # Say what the agents holding those GPUs lack (cpus, memory, ports), not that no
        # agent has everything together: the GPU-less agents are beside the point.
        holders = [a for a in agents if _gpus([a], request)[0] >= request.gpus]
        line = f"{gpus}, but {plc.shortfall(request, holders) or 'not yet usable'} — {wait}"
    return ProfileCapacity(fit.kind, _sentence(line), free_gpus=free, total_gpus=total)
