"""Who a notebook may run as, through a real hub (issue 15 item 8): a system account below
min_uid (``daemon``, uid 1) and a name the hub host's passwd does not know are refused, with a
message that names the setting or the lookup, before anything reaches Mesos."""

from __future__ import annotations

import secrets

import pytest

from tests.services.e2e import mesos_config, start_ready


# Refused before anything reaches Mesos: one master (localmesos) shows it.
@pytest.fixture(scope="module")
def cluster(module_clusters):
    return module_clusters("localmesos")


@pytest.fixture(scope="module")
def hub(cluster, module_hub_factory, homes):
    return module_hub_factory(mesos_config(cluster.url, homes)).launch_blocking()


async def refusal(hub, name: str) -> str:
    await hub.create_user(name)
    code, body = await hub.start_server_response(name)
    assert code >= 400, (code, body)
    return body["message"] if isinstance(body, dict) else str(body)


async def test_daemon_is_refused_naming_min_uid(hub, cluster):
    message = await refusal(hub, "daemon")
    assert "'daemon'" in message and "uid 1" in message and "min_uid" in message, message
    assert await cluster.tasks() == {}


async def test_a_name_the_hub_host_does_not_know_is_refused_naming_the_lookup(hub, cluster):
    ghost = "mss-ghost-" + secrets.token_hex(3)
    message = await refusal(hub, ghost)
    assert f"'{ghost}'" in message and "passwd" in message, message
    assert await cluster.tasks() == {}


async def test_a_persons_own_account_starts(hub, user):
    state = await start_ready(hub, user.name)  # the control: the same hub runs real people
    assert state["task_id"]
