"""The order tests start in: the longest tiers first, so that at the end of a parallel run the
workers share out the short tests instead of one worker finishing a three-minute Docker test
alone (``--dist loadgroup`` hands out work in collection order)."""

from __future__ import annotations

import pytest

# Tiers by the markers tests/conftest.py derives from fixtures; everything else comes last.
FIRST_TIERS = ({"docker", "browser"}, {"e2e", "real_mesos", "zookeeper", "slow"})


def start_order(items: list[pytest.Item]) -> list[pytest.Item]:
    """``items`` with the longest tiers first (``FIRST_TIERS``), otherwise in collection order.

    A group of tests that share a hub or cluster moves as one (at its earliest tier), so its
    tests stay together and in order, as its module-scoped fixtures need."""

    def tier(item: pytest.Item) -> int:
        marks = {m.name for m in item.iter_markers()}
        return next((i for i, t in enumerate(FIRST_TIERS) if marks & t), len(FIRST_TIERS))

    def unit(item: pytest.Item) -> str:
        group = item.get_closest_marker("xdist_group")
        return group.args[0] if group else item.nodeid

    first: dict[str, int] = {}
    for item in items:
        first[unit(item)] = min(first.get(unit(item), len(FIRST_TIERS)), tier(item))
    return sorted(items, key=lambda item: first[unit(item)])


@pytest.hookimpl(trylast=True)  # after the markers, and after pytest's module-scoped ordering
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items[:] = start_order(items)
