"""A stop whose kill never gets through (issue 10 item 5): an agent process SIGSTOPped so it
neither kills nor reports. Mesos resends no KILL for us: the framework must say so, keep
trying (orphan cleanup), and the task must die once the agent answers again."""

from __future__ import annotations

import asyncio
import logging

from mesosspawner.framework import MesosFramework
from tests.services.cluster import AgentSpec, port_block
from tests.services.e2e import wait_for
from tests.services.fakes import framework_config
from tests.services.sleepers import sleeper

_BASE = port_block()
FROZEN = (AgentSpec("frozen-1", f"cpus:2;mem:2048;ports:[{_BASE}-{_BASE + 9}]"),)


async def test_unconfirmed_kill_is_logged_retried_and_the_task_dies_later(
    clusters, tmp_path, caplog
):
    # A localmesos agent process SIGSTOPped keeps its link to the master open: the master never
    # gives up on it, so the kill is neither done nor refused.
    cluster = clusters("localmesos", FROZEN, agent_processes=True)
    fw = MesosFramework(
        framework_config(
            master=cluster.url,
            name=f"kill-{tmp_path.name}",
            id_file=str(tmp_path / "fw.json"),
            orphan_grace_seconds=0.5,
        )
    )
    await fw.ensure_started(timeout=10)
    stopped = False
    try:
        record = await asyncio.wait_for(fw.launch(sleeper("frozen")), 30)
        sent: list[str] = []
        real_kill = fw.client.kill

        async def counting_kill(task_id, agent_id=None, *args, **kwargs):
            sent.append(task_id)
            return await real_kill(task_id, agent_id, *args, **kwargs)

        fw.client.kill = counting_kill
        await cluster.partition("frozen-1")
        stopped = True
        caplog.set_level(logging.WARNING)
        result = await fw.kill(record.task_id, timeout=2)
        assert result.state == "TASK_RUNNING"  # nothing came back from the frozen agent
        assert any(
            record.task_id in r.getMessage() and "not confirmed" in r.getMessage()
            for r in caplog.records
        ), [r.getMessage() for r in caplog.records]
        given_up = len(sent)

        async def sent_again() -> bool:
            return len(sent) > given_up

        # Orphan cleanup retries every orphan_grace_seconds (0.5 s here).
        await wait_for(sent_again, 10, "a KILL sent again after kill() gave up")

        await cluster.heal("frozen-1")
        stopped = False
        for _ in range(100):
            if fw.task(record.task_id).state == "TASK_KILLED":
                break
            await asyncio.sleep(0.2)
        assert fw.task(record.task_id).state == "TASK_KILLED"
        assert (await cluster.tasks())[record.task_id]["state"] == "TASK_KILLED"
    finally:
        if stopped:
            await cluster.heal("frozen-1")
        await fw.stop()
