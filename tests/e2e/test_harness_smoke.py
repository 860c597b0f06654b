"""The e2e harness itself works: a real hub + proxy runs a real notebook as a system user
(JupyterHub's LocalProcessSpawner, so independently of MesosSpawner), and a cluster of
processes shows the same face on localmesos and on real Mesos."""

from __future__ import annotations

import os
from pathlib import Path

from mesosspawner.testing.hub import pids_with_env
from tests.services.cluster import AgentSpec

LOCAL_PROCESS = 'c.JupyterHub.spawner_class = "localprocess"\n'


async def test_local_process_notebook_answers_through_proxy(hub_factory, test_users):
    user = test_users[0]
    hub = await hub_factory(LOCAL_PROCESS).launch()
    await hub.create_user(user.name)

    assert await hub.start_server(user.name) in (201, 202)
    server = await hub.wait_server_ready(user.name)
    assert server["url"] == f"/user/{user.name}/"

    code, status = await hub.get_through_proxy(user.name, path="api/status")
    assert code == 200, status
    assert "started" in status
    events = await hub.progress(user.name)
    assert events[-1]["ready"] is True

    # LocalProcessSpawner switched to the system user of the same name: the notebook runs as
    # that uid and files it writes (into its home, the notebook dir) belong to it.
    notebook_pids = pids_with_env("JUPYTERHUB_USER", user.name)
    owners = {_uid_of(pid) for pid in notebook_pids}
    assert owners == {user.uid}
    name = f"harness-{os.getpid()}.txt"
    code, model = await hub.request_through_proxy(
        user.name,
        method="PUT",
        path=f"api/contents/{name}",
        json={"type": "file", "format": "text", "content": "hello"},
    )
    assert code == 201, model
    written = Path(user.home) / name
    try:
        assert (written.stat().st_uid, written.stat().st_gid) == (user.uid, user.gid)
    finally:
        written.unlink(missing_ok=True)

    await hub.stop_server(user.name)
    code, _ = await hub.get_through_proxy(user.name, path="api/status")
    assert code != 200
    assert hub.admin_token not in hub.log_text()


async def test_named_server_survives_hub_kill_and_restart(hub_factory, test_users):
    user = test_users[1]
    hub = await hub_factory(LOCAL_PROCESS).launch()
    await hub.create_user(user.name)
    assert await hub.start_server(user.name, "lab") in (201, 202)
    await hub.wait_server_ready(user.name, "lab")
    old_proxy = hub.proxy_pid()

    hub.kill()
    assert not hub.running
    await hub.restart()

    assert hub.proxy_pid() not in (None, old_proxy)
    server = await hub.wait_server_ready(user.name, "lab", timeout=10)
    assert server["name"] == "lab"
    code, _ = await hub.get_through_proxy(user.name, "lab")
    assert code == 200
    await hub.stop_server(user.name, "lab")


async def test_browser_logs_in_with_dummy_authenticator(hub_factory, browser_page, tmp_path):
    hub = await hub_factory(LOCAL_PROCESS).launch()
    page = browser_page
    # next=/hub/home: land on the home page instead of auto-spawning a server.
    await page.goto(hub.url + "/hub/login?next=%2Fhub%2Fhome")
    await page.fill("input#username_input", "mss-alice")
    await page.fill("input#password_input", "any password")
    await page.click("#login_submit")
    await page.wait_for_url("**/hub/home")
    shot = tmp_path / "home.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    # Landed logged in: the page names the user and does not offer the login form again.
    assert await page.locator("#login_submit").count() == 0
    assert "mss-alice" in await page.content()


def _uid_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


async def test_a_cluster_reads_the_same_on_both_masters(mesos_kind, clusters):
    agents = (
        AgentSpec("smoke-1", "cpus:2;mem:1024;disk:1000;ports:[41000-41009]", "rack:r1"),
        AgentSpec("smoke-2", "cpus:1;mem:512;disk:1000;ports:[41100-41109]"),
    )
    cluster = clusters(mesos_kind, agents, agent_processes=True)
    assert await cluster.leader_url() == cluster.master_url == cluster.url
    slaves = {a["hostname"]: a for a in await cluster.slaves()}
    assert sorted(slaves) == ["smoke-1", "smoke-2"]
    assert slaves["smoke-1"]["resources"]["cpus"] == 2
    assert await cluster.agent_id("smoke-2") == slaves["smoke-2"]["id"]
    assert await cluster.tasks() == {}
