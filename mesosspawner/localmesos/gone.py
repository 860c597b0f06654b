"""The operator's MARK_AGENT_GONE (``operator_api`` serves it on ``POST /api/v1``).

As Mesos 1.11 does it (``Master::Http::markAgentGone`` in ``src/master/http.cpp``,
``Master::markGone`` and ``__removeSlave`` in ``src/master/master.cpp``): an agent that is
registered, unreachable or recovered is marked gone (200; again: 200; unknown: 404). A registered
agent is told to shut down (its tasks are killed) and removed; every task it had, running there
or unreachable, ends TASK_GONE_BY_OPERATOR (REASON_AGENT_REMOVED_BY_OPERATOR, "Agent has been
marked gone"; TASK_LOST for a framework that is not partition-aware), each framework hears
FAILURE for the agent, and from then on reconciliation answers TASK_GONE_BY_OPERATOR for its
tasks and the agent may never register again. localmesos keeps the mark in the master only
(real Mesos writes it to its registry).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from .model import is_terminal, master_status, update_event
from .validation import id_value

if TYPE_CHECKING:
    from .master import Master
    from .model import Task

log = logging.getLogger("mesosspawner.localmesos.master")

GONE_MESSAGE = "Agent has been marked gone"


class GoneError(Exception):
    """MARK_AGENT_GONE is refused with an HTTP status and Mesos's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def mark_agent_gone(master: Master, body: dict) -> None:
    """``body``: the call's ``mark_agent_gone`` object (``{"agent_id": {"value": ...}}``)."""
    agent_id = id_value(body.get("agent_id"))
    if not agent_id:
        raise GoneError(400, "Expecting 'mark_agent_gone.agent_id' to be present")
    if agent_id in master.gone_agents:
        return  # Mesos: "it has already transitioned to gone", 200
    agent = master.agents.get(agent_id)
    if agent is not None:
        fw_ids = {fw_id for fw_id, _ in agent.tasks}
        if agent.connected:
            for fw_id in fw_ids:
                agent.link.shutdown_framework(fw_id)
        if agent.unreachable_timer is not None:
            agent.unreachable_timer.cancel()
            agent.unreachable_timer = None
        del master.agents[agent_id]
        master.allocator.remove_agent_offers(agent_id)
        tasks = list(agent.tasks.values())
    elif agent_id in master.unreachable_agents:
        del master.unreachable_agents[agent_id]
        tasks = [
            t
            for fw in master.frameworks.values()
            for t in fw.unreachable_tasks.values()
            if t.agent_id == agent_id
        ]
    elif agent_id in master.recovered_agents:
        timer = master.recovered_agents.pop(agent_id)
        if timer is not None:
            timer.cancel()
        tasks = []  # no task metadata until it re-registers, which it now never will
    else:
        raise GoneError(404, f"Agent '{agent_id}' not found")
    log.info("Marking agent %s as gone", agent_id)
    master.gone_agents[agent_id] = time.time()
    for task in tasks:
        _gone(master, task)
    if agent is not None:
        for fw in master.frameworks.values():
            fw.send({"type": "FAILURE", "failure": {"agent_id": {"value": agent_id}}})
    master.allocator.schedule()


def _gone(master: Master, task: Task) -> None:
    fw = master.frameworks.get(task.framework_id)
    if fw is None or is_terminal(task.state):
        return
    state, reason = "TASK_GONE_BY_OPERATOR", "REASON_AGENT_REMOVED_BY_OPERATOR"
    if not fw.partition_aware:
        state, reason = "TASK_LOST", "REASON_AGENT_REMOVED"
    status = master_status(
        task.task_id,
        state,
        reason,
        GONE_MESSAGE,
        task.agent_id,
        executor_id={"value": task.task_id},
    )
    task.record_master_status(status)
    task.resources_released = True  # the agent, and with it what it had, is gone
    fw.tasks.pop(task.task_id, None)
    fw.unreachable_tasks.pop(task.task_id, None)
    fw.completed_tasks.append(task)
    fw.send(update_event(status))
