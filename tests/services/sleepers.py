"""Launch requests for framework tests: a task that sleeps, on whatever the offer gives it."""

from __future__ import annotations

import itertools
import sys

from mesosspawner import naming, placement, taskinfo
from mesosspawner.framework import LaunchRequest

_nonces = itertools.count(1)


def sleeper(
    key: str,
    *,
    cpus: float = 0.5,
    mem: float = 64,
    gpus: int = 0,
    constraints=(),
    seconds: int = 120,
    grace: float = 0.2,
    uris: tuple[str, ...] = (),
) -> LaunchRequest:
    """A request for ``key`` whose task (a plain command) sleeps ``seconds``; every request
    gets a fresh task id (and each relaunch its own, ``naming.attempt_task_id``)."""
    needs = placement.Request(
        key=key, cpus=cpus, mem=mem, gpus=gpus, constraints=tuple(constraints)
    )
    spec = taskinfo.TaskSpec(
        task_id=naming.task_id("jupyterhub", key, "", f"n{next(_nonces)}"),
        name=key,
        argv=(sys.executable, "-c", f"import time; time.sleep({seconds})"),
        env={},
        uris=tuple(uris),
        kill_grace_seconds=grace,
    )
    return LaunchRequest(needs=needs, spec=spec)
