"""Quota limits (issue 19 item 8), through a real hub, on localmesos and on real Mesos 1.11.0
(``mesos_kind``).

The operator limits role ``team`` to 1 cpu (``UPDATE_QUOTA``, Mesos 1.9+): the master never
offers the role more unreserved cpus than that, however free the agents are. A notebook asking
for more than the limit can never start: its spawn fails at once, naming the quota. One that
fits the limit once others stop waits, and its progress says it waits for the role's quota,
not for room on the cluster (there is plenty).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.services.cluster import AgentSpec, port_block, release_port_block
from tests.services.e2e import holds, mesos_config, server_gone, user_tasks, wait_for

PROFILES = """
c.MesosSpawner.profile_list = [
    {"display_name": "Team", "slug": "team", "default": True,
     "mesosspawner_override": {"role": "team", "cpu_limit": 0.75}},
    {"display_name": "Team, big", "slug": "team-big",
     "mesosspawner_override": {"role": "team", "cpu_limit": 2}},
]
"""


@pytest.fixture
def agents():
    base = port_block()
    yield (AgentSpec("cpu-1", f"cpus:4;mem:4096;ports:[{base}-{base + 29}]"),)
    release_port_block(base)


async def test_quota_limit_fails_what_never_fits_and_says_a_spawn_waits_for_quota(
    mesos_kind, clusters, agents, hub_factory, homes, new_user
):
    cluster = clusters(mesos_kind, agents)
    code, body = await cluster.operator(
        {
            "type": "UPDATE_QUOTA",
            "update_quota": {"quota_configs": [{"role": "team", "limits": {"cpus": {"value": 1}}}]},
        }
    )
    assert code == 200, body
    hub = await hub_factory(mesos_config(cluster.url, homes, PROFILES), start_timeout=40).launch()
    carol, alice, bob = [(await new_user()).name for _ in range(3)]
    for user in (carol, alice, bob):
        await hub.create_user(user)

    # 2 cpus can never fit a 1-cpu limit: the spawn fails at once, naming the quota.
    started = time.monotonic()
    code, body = await hub.start_server_response(carol, options={"profile": "team-big"})
    if code in (201, 202):
        await wait_for(lambda: server_gone(hub, carol), 30, "the spawn beyond the quota to fail")
        events = await hub.progress(carol)
        shown = events[-1].get("message", "")
    else:
        shown = body.get("message", "") if isinstance(body, dict) else str(body)
    elapsed = time.monotonic() - started
    assert "quota" in shown and "team" in shown and "2 cpus" in shown, shown
    assert elapsed < 15, f"took {elapsed:.1f} s to fail: {shown}"
    assert user_tasks(await cluster.tasks(), carol) == {}

    # 0.75 of the role's 1 cpu: runs.
    assert await hub.start_server(alice) in (201, 202)
    await hub.wait_server_ready(alice)

    # Another 0.75 waits for the quota (the agent has 3.25 cpus free), and says so.
    assert await hub.start_server(bob) == 202
    progress = asyncio.ensure_future(hub.progress(bob))

    async def waiting() -> bool:
        server = (await hub.user_model(bob))["servers"][""]
        return not progress.done() and server["pending"] == "spawn" and not server["ready"]

    await holds(waiting, 4, "bob's spawn waiting while alice's notebook holds the quota")
    await hub.stop_server(alice)
    events = await asyncio.wait_for(progress, 60)
    messages = [e.get("message", "") for e in events]
    assert any("quota" in m and "role team" in m for m in messages), messages
    assert events[-1].get("ready") is True, messages
