"""GET / on a master: a page a person can read (real Mesos serves its web UI there; localmesos a
small status page of agents, frameworks and tasks), with every user-given string escaped."""

from __future__ import annotations

from tornado.httpclient import AsyncHTTPClient

from mesosspawner.localmesos.status_page import render
from mesosspawner.localmesos.testing import RawScheduler, command_task, framework_info

HOSTILE = '<script>alert("x")</script>'


async def test_the_masters_address_answers_a_page_not_a_404(backend):
    response = await AsyncHTTPClient().fetch(backend.url + "/", raise_error=False)
    assert response.code == 200, response.code
    assert response.headers["Content-Type"].startswith("text/html")


async def test_localmesos_status_page_lists_agents_frameworks_and_tasks(cli_master):
    """localmesos only (the CLI's default cluster): what its page shows."""
    s = RawScheduler(cli_master)
    try:
        gpus = [{"type": "GPU_RESOURCES"}]
        await s.subscribe(framework_info(name="jupyterhub", capabilities=gpus))
        offer = None
        while offer is None:
            offer = next((o for o in await s.offers() if o["hostname"] == "gpu-1"), None)
        task = command_task(offer, "jupyter.hub.alice.exp-1.n1", "sleep 30", cpus=0.1, mem=32)
        task["name"] = f"jupyter alice {HOSTILE}"
        await s.accept([offer["id"]["value"]], [task])
        status = await s.update("jupyter.hub.alice.exp-1.n1")
        await s.ack(status)
        page = (await AsyncHTTPClient().fetch(cli_master + "/")).body.decode()
    finally:
        await s.close()
    for text in ("agent-1", "gpu-1", "spark-1", "jupyterhub", "jupyter.hub.alice.exp-1.n1"):
        assert text in page, text
    assert "cpus 0.1 of" in page  # the task's share of gpu-1
    assert HOSTILE not in page and "jupyter alice &lt;script&gt;" in page
    assert "/master/state" in page


def test_render_escapes_every_value_from_the_state():
    state = {
        "version": "1.11.0",
        "slaves": [
            {
                "id": "a1",
                "hostname": HOSTILE,
                "resources": {"cpus": 2, "mem": 1024, "ports": "[31000-31999]"},
                "used_resources": {"cpus": 0.5, "mem": 256},
                "attributes": {"rack": HOSTILE},
            }
        ],
        "frameworks": [
            {
                "id": "f1",
                "name": HOSTILE,
                "roles": ["*"],
                "connected": True,
                "tasks": [
                    {
                        "id": HOSTILE,
                        "name": HOSTILE,
                        "state": "TASK_RUNNING",
                        "slave_id": "a1",
                        "framework_id": "f1",
                        "resources": {"cpus": 0.5},
                    }
                ],
            }
        ],
    }
    page = render(state)
    assert "<script>" not in page
    assert page.count("&lt;script&gt;") == 7  # agent: hostname, rack; framework: name; task: 4
    assert "cpus 0.5 of 2, mem 256 MiB of 1024 MiB" in page
    assert "running" in page and ">1<" in page  # one live task
