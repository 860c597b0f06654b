"""A stop whose kill never gets through (issue 10 item 5): an agent process SIGSTOPped so it
neither kills nor reports. Mesos resends no KILL for us: the framework must say so, keep
trying (orphan cleanup), and the task must die once the agent answers again."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal

import pytest

from mesosspawner.framework import MesosFramework
from tests.e2e.harness import master_state
from tests.e2e.mesos_env import tasks_by_id
from tests.services.fakes import framework_config
from tests.services.sleepers import sleeper

pytestmark = pytest.mark.e2e

_BASE = random.Random().randrange(30000, 32000, 100)
AGENT_RESOURCES = f"cpus:2;mem:2048;ports:[{_BASE}-{_BASE + 9}]"


async def test_unconfirmed_kill_is_logged_retried_and_the_task_dies_later(
    localmesos_proc, localmesos_agent_proc, tmp_path, caplog
):
    # The master must not give up on the agent during the test: it stays "connected".
    cluster = await localmesos_proc(
        None, extra_args=["--no-agents", "--agent-unreachable-timeout", "600"]
    )
    agent = await localmesos_agent_proc(cluster.url, "frozen-1", AGENT_RESOURCES)
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
        os.kill(agent.proc.pid, signal.SIGSTOP)
        stopped = True
        caplog.set_level(logging.WARNING)
        result = await fw.kill(record.task_id, timeout=2)
        assert result.state == "TASK_RUNNING"  # nothing came back from the frozen agent
        assert any(
            record.task_id in r.getMessage() and "not confirmed" in r.getMessage()
            for r in caplog.records
        ), [r.getMessage() for r in caplog.records]
        given_up = len(sent)
        await asyncio.sleep(4)
        assert len(sent) > given_up, "no KILL was sent again after kill() gave up"

        os.kill(agent.proc.pid, signal.SIGCONT)
        stopped = False
        for _ in range(100):
            if fw.task(record.task_id).state == "TASK_KILLED":
                break
            await asyncio.sleep(0.2)
        assert fw.task(record.task_id).state == "TASK_KILLED"
        state = await master_state(cluster.url)
        assert tasks_by_id(state)[record.task_id]["state"] == "TASK_KILLED"
    finally:
        if stopped:
            os.kill(agent.proc.pid, signal.SIGCONT)
        await fw.stop()
