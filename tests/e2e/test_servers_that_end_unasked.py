"""Servers that end without the person asking, through a real hub on localmesos and on REAL
Mesos 1.11.0: an agent that comes back after its server was given up, an agent the operator
marks gone, a task Mesos no longer knows, a hub away longer than its framework's
failover_timeout or back with another principal or user, and a notebook that dies right after
its task runs. Each time the person is told why, and nothing is left running unowned."""

from __future__ import annotations

import json
import time

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.services.cluster import AgentSpec, port_block
from tests.services.e2e import (
    holds,
    mesos_config,
    server_gone,
    spawn_page,
    start_ready,
    task_pids,
    wait_for,
)

_BASE = port_block()
ONE = (AgentSpec("lonely-1", f"cpus:2;mem:4096;ports:[{_BASE}-{_BASE + 29}]"),)
# A cluster built anew: another master, another agent (its own ports).
REBUILT = (AgentSpec("fresh-1", f"cpus:2;mem:4096;ports:[{_BASE + 30}-{_BASE + 59}]"),)


async def operator_call(cluster, body: dict) -> tuple[int, str]:
    """The v1 operator API, ``POST /api/v1``, as an admin calls it."""
    request = HTTPRequest(
        f"{cluster.master_url}/api/v1",
        method="POST",
        body=json.dumps(body),
        headers={"Content-Type": "application/json"},
        request_timeout=10,
    )
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    return response.code, (response.body or b"").decode(errors="replace")


async def last_stop_shown(hub, user: str) -> str:
    """What the person reads where they would start their server again."""
    page = await spawn_page(hub, user)
    marker = "Your last server stopped: "
    assert marker in page, page[-3000:]
    return page.split(marker, 1)[1].split("</div>", 1)[0]


async def test_server_given_up_while_its_agent_was_down_is_killed_when_the_agent_returns(
    mesos_kind, clusters, hub_factory, homes, user
):
    """SIGKILL the agent (its executor keeps the notebook alive), wait until poll() reports
    the server stopped (JupyterHub then calls no stop()), restart the agent on the same work
    directory: the returning task is killed and its resources freed."""
    cluster = await clusters.faultable(mesos_kind, ONE)
    extra = "c.MesosSpawner.poll_interval = 1\nc.MesosSpawner.unreachable_grace_seconds = 3"
    hub = await hub_factory(mesos_config(cluster.url, homes, extra)).launch()
    await hub.create_user(user.name)
    task_id = (await start_ready(hub, user.name))["task_id"]

    async def task_is(state: str) -> bool:
        return (await cluster.task_states()).get(task_id) == state

    await cluster.kill_agent("lonely-1")
    await wait_for(lambda: task_is("TASK_UNREACHABLE"), 30, "the task to become unreachable")
    await wait_for(lambda: server_gone(hub, user.name), 30, "the hub to give the server up")
    assert "task unreachable" in await last_stop_shown(hub, user.name)
    assert task_pids(task_id), "the notebook should outlive its agent (executor recovery)"

    await cluster.restart_agent("lonely-1")
    await wait_for(lambda: task_is("TASK_KILLED"), 60, "the returning task to be killed")

    async def freed() -> bool:
        return all(a["used_resources"]["cpus"] == 0 for a in await cluster.slaves())

    await wait_for(freed, 30, "the agent's resources to be free")
    await wait_for(lambda: _no_pids(task_id), 30, "the notebook process to end")


async def _no_pids(task_id: str) -> bool:
    return not task_pids(task_id)


async def test_agent_marked_gone_by_the_operator_stops_its_servers_saying_why(
    mesos_kind, clusters, hub_factory, homes, user
):
    cluster = clusters(mesos_kind, ONE)
    hub = await hub_factory(
        mesos_config(cluster.url, homes, "c.MesosSpawner.poll_interval = 1")
    ).launch()
    await hub.create_user(user.name)
    state = await start_ready(hub, user.name)
    task_id, agent_id = state["task_id"], state["agent_id"]

    code, text = await operator_call(
        cluster, {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}}
    )
    assert code == 200, text
    await wait_for(lambda: server_gone(hub, user.name), 20, "the hub to stop the server")
    shown = await last_stop_shown(hub, user.name)
    assert "gone_by_operator" in shown and "Agent has been marked gone" in shown, shown
    await wait_for(lambda: _no_pids(task_id), 30, "the gone agent's notebook to end")


async def test_server_whose_task_mesos_no_longer_knows_stops_saying_why(
    mesos_kind, clusters, hub_factory, homes, user
):
    """The cluster was rebuilt while the hub was down: the new master has never heard of the
    agent the notebook ran on and answers TASK_UNKNOWN. The server is reported stopped with
    that reason, without a kill that can never be confirmed."""
    old = clusters(mesos_kind, ONE)
    hub = await hub_factory(mesos_config(old.url, homes)).launch()
    await hub.create_user(user.name)
    task_id = (await start_ready(hub, user.name))["task_id"]
    hub.kill()
    old.close()

    new = clusters(mesos_kind, REBUILT)
    extra = (
        "c.MesosSpawner.poll_interval = 1\n"
        "c.MesosSpawner.unreachable_grace_seconds = 2\n"
        # How long the restarted hub tries the notebook's address before asking poll().
        "c.Spawner.http_timeout = 8\n"
    )
    started = time.monotonic()
    await hub.restart(mesos_config(new.url, homes, extra))
    await wait_for(lambda: server_gone(hub, user.name), 40, "the hub to stop the server")
    took = time.monotonic() - started
    shown = await last_stop_shown(hub, user.name)
    assert "unknown" in shown and "Reconciliation: Task is unknown" in shown, shown
    assert "did not confirm the kill" not in hub.log_text()
    assert took < 30, f"the server was reported stopped {took:.0f} s after the restart"
    assert task_id not in await new.tasks()
    await start_ready(hub, user.name)  # and the rebuilt cluster serves the next spawn


async def test_hub_back_after_its_failover_timeout_reports_servers_stopped_and_spawns_anew(
    mesos_kind, clusters, hub_factory, homes, user
):
    cluster = clusters(mesos_kind, ONE)
    extra = "c.MesosSpawner.failover_timeout = 3\nc.Spawner.http_timeout = 8\n"
    hub = await hub_factory(mesos_config(cluster.url, homes, extra)).launch()
    await hub.create_user(user.name)
    task_id = (await start_ready(hub, user.name))["task_id"]
    (old_id,) = [f["id"] for f in (await cluster.state())["frameworks"]]
    await hub.stop()

    async def removed() -> bool:
        state = await cluster.state()
        return old_id in [f["id"] for f in state.get("completed_frameworks", [])]

    await wait_for(removed, 30, "Mesos to remove the framework after its failover_timeout")
    assert (await cluster.task_states())[task_id] == "TASK_KILLED"

    await hub.restart()
    await wait_for(lambda: server_gone(hub, user.name), 30, "the hub to report the server")
    shown = await last_stop_shown(hub, user.name)
    assert "failover_timeout" in shown and "3 seconds" in shown, shown

    async def new_framework() -> str | None:
        active = [f["id"] for f in (await cluster.state())["frameworks"] if f.get("active")]
        return active[0] if active else None

    new_id = await wait_for(new_framework, 30, "the hub to subscribe as a new framework")
    assert new_id != old_id
    saved = json.loads((hub.workdir / "mesosspawner-framework.json").read_text())
    assert saved["framework_id"] == new_id
    await start_ready(hub, user.name)


async def test_hub_back_with_another_user_or_principal_says_what_changed(
    mesos_kind, clusters, hub_factory, homes, new_user
):
    """Mesos keeps a framework's user (it cannot change) and refuses another principal. The
    hub says so when it starts, naming the old and new values, and does not keep retrying."""
    cluster = clusters(mesos_kind, ONE)
    config = mesos_config(cluster.url, homes, 'c.MesosSpawner.principal = "hub-a"')
    hub = await hub_factory(config).launch()
    first, second, third = [(await new_user()).name for _ in range(3)]
    for name in (first, second, third):
        await hub.create_user(name)
    await start_ready(hub, first)
    (framework,) = (await cluster.state())["frameworks"]
    assert framework["user"] == "root"

    # Another user: Mesos keeps the first; the hub warns, and spawns go on.
    start = len(hub.log_text())
    await hub.restart(config + 'c.MesosSpawner.framework_user = "nobody"\n')

    async def warned() -> str | None:
        lines = [
            line
            for line in hub.log_text()[start:].splitlines()
            if "'nobody'" in line and "'root'" in line and "framework_user" in line
        ]
        return lines[0] if lines else None

    await wait_for(warned, 30, "the hub to warn that Mesos keeps the framework's first user")
    await start_ready(hub, second)

    # Another principal: Mesos refuses the framework. The hub says so at once, naming both.
    start = len(hub.log_text())
    await hub.restart(config.replace('"hub-a"', '"hub-b"'))

    async def refused() -> str | None:
        lines = [
            line
            for line in hub.log_text()[start:].splitlines()
            if "principal" in line and "'hub-a'" in line and "'hub-b'" in line
        ]
        return lines[0] if lines else None

    line = await wait_for(refused, 30, "the hub to say Mesos refuses the changed principal")
    assert line.startswith(("[E ", "[C ")), line  # logged as an error
    began = time.monotonic()
    code, body = await hub.start_server_response(third)
    if code in (201, 202):
        await wait_for(lambda: server_gone(hub, third), 20, "the spawn to fail")
        shown = (await hub.progress(third))[-1].get("message", "")
    else:
        shown = body.get("message", "") if isinstance(body, dict) else str(body)
    assert time.monotonic() - began < 20
    assert "principal" in shown and "hub-a" in shown and "hub-b" in shown, shown

    async def refused_once() -> bool:
        # The framework logs every ERROR the master sends: one per SUBSCRIBE it tries.
        return hub.log_text()[start:].count("Mesos master reports an error for framework") == 1

    await holds(refused_once, 5, "one refused subscription, no retries")


async def test_notebook_that_dies_right_after_it_runs_fails_the_spawn_with_its_reason(
    mesos_kind, clusters, hub_factory, homes, user
):
    """Not a 500 (``InvalidStateError: Exception is not set.``) and a wait of http_timeout:
    the spawn fails within seconds, saying what Mesos said."""
    cluster = clusters(mesos_kind, ONE)
    dies = '["/bin/sh", "-c", "sleep 1; echo the notebook cannot start >&2; exit 3"]'
    hub = await hub_factory(
        mesos_config(cluster.url, homes, f"c.MesosSpawner.cmd = {dies}"), start_timeout=60
    ).launch()
    await hub.create_user(user.name)
    began = time.monotonic()
    code, body = await hub.start_server_response(user.name)
    assert code in (201, 202, 500) and "InvalidStateError" not in str(body), (code, body)
    if code == 500:
        shown = body.get("message", "") if isinstance(body, dict) else str(body)
    else:
        events = await hub.progress(user.name)
        shown = events[-1].get("message", "")
        assert events[-1].get("failed"), events
    assert "exited with status 3" in shown, shown
    await wait_for(lambda: server_gone(hub, user.name), 30, "the failed spawn to end")
    took = time.monotonic() - began
    assert took < 25, f"the failure took {took:.0f} s to reach the person"
