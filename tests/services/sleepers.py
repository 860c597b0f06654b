"""Launch requests for framework tests: a task that sleeps, on whatever the offer gives it."""

from __future__ import annotations

import itertools
import sys

from mesosspawner import naming, placement
from mesosspawner.framework import LaunchRequest
from mesosspawner.mesos.resources import resources_to_json

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
    """A request for ``key`` whose task sleeps ``seconds``; every build gets a fresh task id
    (a relaunch after a failure must not reuse one)."""
    needs = placement.Request(
        key=key, cpus=cpus, mem=mem, gpus=gpus, constraints=tuple(constraints)
    )

    def build(p: placement.Placement) -> dict:
        command: dict = {"value": f"{sys.executable} -c 'import time; time.sleep({seconds})'"}
        if uris:
            command["uris"] = [{"value": u} for u in uris]
        return {
            "name": key,
            "task_id": {"value": naming.task_id("jupyterhub", key, "", f"n{next(_nonces)}")},
            "agent_id": {"value": p.agent_id},
            "resources": resources_to_json(p.resources, allocation_role=p.allocation_role),
            "command": command,
            "kill_policy": {"grace_period": {"nanoseconds": int(grace * 1e9)}},
        }

    return LaunchRequest(needs=needs, build_task=build)
