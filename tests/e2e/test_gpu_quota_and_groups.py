"""GPU quotas, profiles by group and the admins' queue page, through a real hub on localmesos
(the hub's own rules: no Mesos behaviour to judge, so one master). One hub and a cluster with
two GPUs serve the module; each test has people of its own."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest
import requests

from mesosspawner.testing.net import free_port
from tests.services.cluster import AgentSpec, port_block
from tests.services.e2e import (
    add_to_group,
    logged_in_get,
    mesos_config,
    server_gone,
    spawn_page,
    start_ready,
    user_tasks,
    wait_for,
)

ADMIN = "gq-admin"

PROFILES = """
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 1}
c.Authenticator.admin_users = {%(admin)r}
c.MesosSpawner.poll_interval = 1
c.MesosSpawner.gpu_queue_tick = 0.5
c.MesosSpawner.gpu_user_quota = 1
c.MesosSpawner.gpu_groups = {"deep-learning": {"share": 2, "quota": 1}}
c.MesosSpawner.profile_list = [
    {"display_name": "CPU", "slug": "cpu", "default": True},
    {"display_name": "GPU", "slug": "gpu", "mesosspawner_override": {"gpus": 1},
     "profile_options": {"size": {"display_name": "GPUs", "choices": {
         "one": {"display_name": "One GPU", "default": True},
         "two": {"display_name": "Two GPUs", "allowed_groups": ["deep-learning"],
                 "mesosspawner_override": {"gpus": 2}}}}}},
    {"display_name": "Two GPUs", "slug": "gpu2", "mesosspawner_override": {"gpus": 2}},
    {"display_name": "Deep learning", "slug": "deep", "allowed_groups": ["deep-learning"],
     "mesosspawner_override": {"gpus": 1}},
]
from mesosspawner.gpuqueue.service.hubconfig import register_gpu_queue_service
register_gpu_queue_service(c, port=%(port)d)
"""


@pytest.fixture(scope="module")
def cluster(module_clusters):
    base = port_block()
    agents = (AgentSpec("gpu-1", f"cpus:4;mem:8192;gpus:2;ports:[{base}-{base + 49}]"),)
    return module_clusters("localmesos", agents)


@pytest.fixture(scope="module")
def hub(cluster, module_hub_factory, homes):
    extra = PROFILES % {"admin": ADMIN, "port": free_port()}
    return module_hub_factory(mesos_config(cluster.url, homes, extra)).launch_blocking()


async def failure_shown(hub, user: str, name: str, options: dict) -> tuple[float, str]:
    """Ask for a server; how long until it failed and what the person was shown (the REST
    answer, or the last event of the progress stream when the POST returned first)."""
    started = time.monotonic()
    code, body = await hub.start_server_response(user, name, options)
    if code in (201, 202):
        await wait_for(lambda: server_gone(hub, user, name), 15, "the spawn to fail")
        events = await hub.progress(user, name)
        assert events and events[-1].get("failed"), events
        return time.monotonic() - started, events[-1]["message"]
    assert code >= 400, body
    return time.monotonic() - started, body.get("message", "") if isinstance(body, dict) else body


async def test_a_request_beyond_the_persons_quota_fails_at_once_naming_the_quota(
    hub, cluster, user
):
    await start_ready(hub, user.name, "one", options={"profile": "gpu"})
    elapsed, shown = await failure_shown(hub, user.name, "two", {"profile": "gpu"})
    assert elapsed <= 5, f"took {elapsed:.1f}s to fail"
    assert "Your GPU quota is 1 GPU and you hold 1 GPU" in shown, shown
    assert "gpu_user_quota" in shown, shown
    # The options form says so before anyone tries: the GPU card is over their quota.
    page = await spawn_page(hub, user.name)
    card = page.split('data-profile="gpu"', 1)[1].split("</label>", 1)[0]
    assert "Over your GPU quota" in card and "Your GPU quota is 1 GPU" in card, card
    # Two GPUs at once are beyond a one-GPU quota even holding nothing: refused the same way.
    await hub.stop_server(user.name, "one")
    elapsed, shown = await failure_shown(hub, user.name, "big", {"profile": "gpu2"})
    assert elapsed <= 5 and "Your GPU quota is 1 GPU; this server asks for 2 GPUs" in shown, shown
    tasks = user_tasks(await cluster.tasks(), user.name)
    assert len(tasks) == 1, tasks  # only "one" ever launched


async def test_a_profile_outside_the_persons_groups_is_refused_in_the_form_and_the_api(
    hub, new_user
):
    outsider, member = await new_user(), await new_user()
    await add_to_group(hub, "deep-learning", [member.name])

    # REST: the profile, and a choice of another profile, are not theirs.
    code, body = await hub.start_server_response(outsider.name, options={"profile": "deep"})
    assert code == 400 and "profile not available to you: 'deep'" in json.dumps(body), body
    code, body = await hub.start_server_response(
        outsider.name, options={"profile": "gpu", "size": "two"}
    )
    assert code == 400 and "not available to you" in json.dumps(body), body

    # The form: neither is offered, and a forged post is refused with the same words.
    page = await spawn_page(hub, outsider.name)
    assert 'value="gpu"' in page and 'value="deep"' not in page
    assert 'value="two"' not in page
    refused = await asyncio.to_thread(form_post, hub.url, outsider.name, {"profile": "deep"})
    assert "profile not available to you" in refused, refused[-2000:]

    # A member sees both and may use them.
    page = await spawn_page(hub, member.name)
    assert 'value="deep"' in page and 'value="two"' in page
    await start_ready(hub, member.name, options={"profile": "deep"})


def form_post(base: str, user: str, data: dict) -> str:
    """Post the spawn form as a logged-in person; the page they get back."""
    with requests.Session() as session:
        session.get(f"{base}/hub/login")
        session.post(
            f"{base}/hub/login",
            data={"username": user, "password": "x", "_xsrf": session.cookies.get("_xsrf")},
        )
        session.get(f"{base}/hub/spawn/{user}")
        response = session.post(
            f"{base}/hub/spawn/{user}", data={**data, "_xsrf": session.cookies.get("_xsrf")}
        )
        return response.text


def service_get(base: str, user: str, path: str) -> tuple[int, str]:
    """GET a page of a hub service as a logged-in person (following the OAuth redirects)."""
    with requests.Session() as session:
        session.get(f"{base}/hub/login")
        session.post(
            f"{base}/hub/login",
            data={"username": user, "password": "x", "_xsrf": session.cookies.get("_xsrf")},
        )
        response = session.get(base + path)
        return response.status_code, response.text


async def test_admins_see_waiting_and_running_gpu_sessions_per_group_and_metrics(hub, new_user):
    owner, borrower, waiter, onlooker = [await new_user() for _ in range(4)]
    await add_to_group(hub, "deep-learning", [owner.name, borrower.name])
    # deep-learning's quota is 1 GPU: the second of its servers borrows the other GPU.
    await start_ready(hub, owner.name, options={"profile": "gpu"})
    await start_ready(hub, borrower.name, options={"profile": "gpu"})
    assert await hub.start_server(waiter.name, options={"profile": "gpu"}) == 202

    async def page_lists_all() -> str | None:
        code, page = await asyncio.to_thread(service_get, hub.url, ADMIN, "/services/gpu-queue/")
        rows = [re.search(rf'<tr data-user="{u.name}">', page) for u in (owner, borrower, waiter)]
        return page if code == 200 and all(rows) else None

    page = await wait_for(page_lists_all, 60, "the queue page to list the three of them")
    assert 'data-group="deep-learning"' in page and 'data-group="others"' in page
    assert "2 (67 %)" in page  # deep-learning's share 2 of 3
    code, data = await asyncio.to_thread(
        service_get, hub.url, ADMIN, "/services/gpu-queue/api/queue"
    )
    live = json.loads(data)
    (waiting,) = [w for w in live["waiting"] if w["user"] == waiter.name]
    assert waiting["position"] == 1 and waiting["group"] == "others"
    borrowed = {r["user"]: r["borrowed"] for r in live["running"]}
    assert borrowed == {owner.name: False, borrower.name: True}, live["running"]

    # Anyone opening the options form sees where they would stand.
    page = await spawn_page(hub, onlooker.name)
    card = page.split('data-profile="gpu"', 1)[1].split("</label>", 1)[0]
    assert "you would be 2nd in the GPU queue" in card, card

    # Not for everyone: a person without the service's access scope is refused by the hub.
    code, _ = await asyncio.to_thread(service_get, hub.url, waiter.name, "/services/gpu-queue/")
    assert code == 403

    code, raw, _ = await hub._http.fetch(
        f"{hub.url}/hub/metrics", headers={"Authorization": f"token {hub.admin_token}"}
    )
    metrics = raw.decode()
    assert 'mesosspawner_gpu_queue_length{profile="gpu"} 1.0' in metrics
    assert re.search(r'mesosspawner_gpu_hours_total\{group="deep-learning"\} [0-9.e-]+', metrics)
    assert "mesosspawner_gpu_queue_wait_seconds_bucket" in metrics
    await hub.stop_server(borrower.name)
    await hub.wait_server_ready(waiter.name, timeout=60)


async def test_the_home_page_is_unchanged_without_notices(hub, user):
    code, page = await asyncio.to_thread(logged_in_get, hub.url, user.name, "/hub/home")
    assert code == 200 and "mesosspawner-gpu-notice" not in page
