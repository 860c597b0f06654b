"""Fixtures for the real-Mesos end-to-end tier: real JupyterHub + proxy + REAL Mesos 1.11.0.

The hub side is the e2e tier's (``tests/e2e``: ``hub_factory``, ``homes``); the cluster side is
``tests/services/real_mesos`` (``real_cluster``, from ``tests/conftest.py``). Agents get port
ranges from a random base per test process, as the localmesos e2e clusters do, so two sessions
on one machine never hand the same port to two notebooks.

Fixtures:
- real_agents -> dict hostname -> agent spec (``plain-1`` and the ``spark``-reserved ``spark-1``)
- real_mesos(**kwargs) -> RealCluster   starts masters + the standard agents (kwargs go to
  ``real_mesos.start_cluster``: ``zk=``, ``masters=``, ``docker=``, ``agents=``)
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from tests.e2e.conftest import _needs_proxy, homes, hub_factory  # noqa: F401  (fixtures)
from tests.services import real_mesos as real

_BASE = random.Random().randrange(34000, 39000, 100)
PLAIN = {
    "hostname": "plain-1",
    "resources": f"cpus:4;mem:4096;disk:10000;ports:[{_BASE}-{_BASE + 29}]",
    "attributes": "rack:r1",
}
SPARK = {
    "hostname": "spark-1",
    "resources": (
        f"cpus(spark):4;mem(spark):4096;cpus:0.5;mem:512;disk:10000;"
        f"ports:[{_BASE + 30}-{_BASE + 59}]"
    ),
    "attributes": "rack:r2;spark_cluster:prod",
}
AGENTS = (PLAIN, SPARK)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e_real" in str(item.path):
            item.add_marker(pytest.mark.real_mesos)
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def real_mesos(real_cluster) -> Callable[..., real.RealCluster]:
    """``real_mesos(agents=AGENTS, **start_cluster kwargs)``: masters + agents, stopped after."""

    def start(**kwargs) -> real.RealCluster:
        kwargs.setdefault("agents", AGENTS)
        return real_cluster(**kwargs)

    return start
