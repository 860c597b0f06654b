"""An offer rescinded between placement and ACCEPT (issue 19 item 7), on localmesos and on real
Mesos 1.11.0 (``mesos_kind``): the launch is retried on a fresh offer and the spawn succeeds.

Made certain rather than likely: both masters rescind offers after a short offer timeout
(``--offer_timeout``), and the framework's first ACCEPT is held until the master no longer lists
the offer it names, so that ACCEPT always arrives after the rescind.
"""

from __future__ import annotations

import asyncio
import time

from mesosspawner.framework import MesosFramework
from mesosspawner.mesos.client import SchedulerClient
from mesosspawner.mesos.states import ACTIVE_STATES
from tests.services.cluster import AgentSpec, port_block, release_port_block
from tests.services.fakes import framework_config
from tests.services.sleepers import sleeper


class AcceptsAfterRescind(SchedulerClient):
    """A real scheduler client whose first ACCEPT waits until the master has rescinded (timed
    out) the offer it names: the race between placement and ACCEPT, lost every time."""

    held: list[str]

    async def launch(self, offer_ids, task_infos, filters=None):
        if not hasattr(self, "held"):
            self.held = list(offer_ids)
            deadline = time.monotonic() + 30
            while set(offer_ids) & await self._outstanding():
                assert time.monotonic() < deadline, f"offers {offer_ids} never rescinded"
                await asyncio.sleep(0.1)
        await super().launch(offer_ids, task_infos, filters)

    async def _outstanding(self) -> set[str]:
        state = await self.get_json("/master/state")
        return {
            str(o["id"])
            for fw in state["frameworks"]
            if fw["id"] == self.framework_id
            for o in fw.get("offers", [])
        }


async def test_offer_rescinded_before_accept_is_retried_and_the_task_runs(
    mesos_kind, clusters, tmp_path
):
    base = port_block()
    try:
        agents = (AgentSpec("cpu-1", f"cpus:2;mem:2048;ports:[{base}-{base + 9}]"),)
        cluster = clusters(
            mesos_kind,
            agents,
            localmesos_args=("--offer-timeout", "1"),
            master_flags=("--offer_timeout=1secs",),
        )
        config = framework_config(
            master=cluster.url, name=f"rescind-{tmp_path.name}", refuse_seconds=1
        )
        fw = MesosFramework(config, client_factory=AcceptsAfterRescind)
        try:
            await fw.ensure_started(timeout=20)
            req = sleeper("alice")
            retries: list[str] = []
            req.observer.retry = retries.append
            record = await asyncio.wait_for(fw.launch(req), 60)
            assert record.state == "TASK_RUNNING"
            assert fw.client.held, "the first ACCEPT was never held"
            # The first attempt was refused for its stale offer; the second one runs.
            first = [t for t in fw.tasks.values() if t.task_id != record.task_id]
            assert [t.reason for t in first] == ["REASON_INVALID_OFFERS"], first
            assert any("no longer valid" in why for why in retries), retries
            states = await cluster.task_states()
            assert states[record.task_id] == "TASK_RUNNING"
            await fw.kill(record.task_id, timeout=15)
        finally:
            for t in list(fw.tasks.values()):
                if t.state in ACTIVE_STATES:
                    await fw.kill(t.task_id, timeout=10)
            await fw.stop()
    finally:
        release_port_block(base)
