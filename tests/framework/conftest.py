"""Framework tests build their FrameworkConfig the way a hub does: from MesosSpawner's traits."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from mesosspawner import MesosSpawner
from mesosspawner.framework import FrameworkConfig


def framework_config(*, master: str, **overrides) -> FrameworkConfig:
    """The trait defaults' FrameworkConfig for ``master``, with ``overrides``; no id file
    unless one is given (a test must not leave one in the working directory)."""
    spawner = MesosSpawner(
        user=SimpleNamespace(name="framework-test", id=0, groups=[]), mesos_master=master
    )
    overrides.setdefault("id_file", None)
    return dataclasses.replace(spawner.framework_config(), **overrides)
