"""Agents pull notebook images from a registry that needs a login, with the login they are
given as ``--docker_config`` (real Mesos's Docker containerizer: ``docker pull`` in a temporary
HOME; localmesos: the same option in the cluster file). Positive control: the same spawn on
agents without it fails at the pull."""

from __future__ import annotations

import asyncio
import io
import uuid
from dataclasses import replace

import docker

from mesosspawner.images.registry import registry_digest
from tests.services.cluster import lab_agents
from tests.services.docker import image_exists
from tests.services.e2e import docker_notebook_config, mesos_config, start_ready


def push_with_ci_login(client, notebook_image: str, auth_registry) -> str:
    """An image of its own (the lab's notebook image plus a label no other run has) in the
    authenticated registry (CI's push), pinned by digest, and NOT in the engine: an agent must
    pull it, so it must log in."""
    if not image_exists(client, notebook_image):
        repo, _, tag = notebook_image.rpartition(":")
        client.images.pull(repo, tag=tag)
    tag = uuid.uuid4().hex[:12]
    target = f"{auth_registry.address}/mesosspawner/login-check"
    dockerfile = f"FROM {notebook_image}\nLABEL org.mesosspawner.test={tag}\n".encode()
    for item in client.api.build(
        fileobj=io.BytesIO(dockerfile), tag=f"{target}:{tag}", rm=True, decode=True
    ):
        assert "error" not in item, item
    login = auth_registry.logins["ci"]
    for item in client.api.push(
        target, tag=tag, stream=True, decode=True, auth_config=login.auth_config()
    ):
        assert "error" not in item, item
    client.images.remove(f"{target}:{tag}")
    digest = registry_digest(auth_registry.address, "mesosspawner/login-check", tag, auth=login)
    pinned = f"{target}@{digest}"
    assert not image_exists(client, pinned)
    return pinned


def agents_with_login(config_path) -> tuple:
    return tuple(
        replace(
            a,
            local_keys=(*a.local_keys, ("docker_config", str(config_path))),
            real_flags=(*a.real_flags, f"--docker_config=file://{config_path}"),
        )
        for a in lab_agents()
    )


async def test_agents_pull_with_their_registry_login(
    mesos_kind,
    clusters,
    hub_factory,
    homes,
    new_user,
    notebook_image,
    auth_registry,
    docker_client,
    tmp_path,
):
    pinned = push_with_ci_login(docker_client, notebook_image, auth_registry)
    login = auth_registry.docker_config("agents", tmp_path / "agents")
    extra = docker_notebook_config(pinned, homes, force_pull=True)

    cluster = clusters(mesos_kind, agents=agents_with_login(login), docker=True)
    # Both clusters before any container of this test: a real agent that starts while another
    # agent removes a container of its own fails its recovery ("No such container").
    bare = clusters(mesos_kind, docker=True)
    hub = await hub_factory(mesos_config(cluster.url, homes, extra), start_timeout=240).launch()
    person = await new_user()
    await hub.create_user(person.name)
    state = await start_ready(hub, person.name)
    assert state["image"] == pinned
    await hub.stop_server(person.name)
    for _ in range(120):  # its container goes (real Mesos: after --docker_remove_delay)
        try:
            docker_client.images.remove(pinned, force=True)
            break
        except docker.errors.ImageNotFound:
            break
        except docker.errors.APIError:
            await asyncio.sleep(0.5)
    assert not image_exists(docker_client, pinned)

    # Control: agents without the login cannot pull it.
    hub = await hub_factory(mesos_config(bare.url, homes, extra), start_timeout=240).launch()
    other = await new_user()
    await hub.create_user(other.name)
    code = await hub.start_server(other.name)
    assert code in (201, 202, 500), code  # 500: the spawn failed before the API answered
    for _ in range(240):
        model = await hub.user_model(other.name)
        server = (model.get("servers") or {}).get("")
        if not server:
            break
        assert not server.get("ready"), "an agent without a login pulled the image"
        await asyncio.sleep(0.5)
    else:
        raise AssertionError("the spawn without a registry login neither failed nor started")
    log = hub.log_text()
    assert "no basic auth credentials" in log or "unauthorized" in log.lower(), log[-3000:]
