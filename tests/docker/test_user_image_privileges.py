"""A package that plants a setuid-root shell and a python with the cap_setuid file capability at
build time (its setup.py runs as root) does not give the person euid 0 in their notebook: the
images service strips both as the build's last step. Positive control: the same image built
without that step, run the same way (today's Docker notebooks, no no-new-privileges), does.

Real hub, proxy, localmesos with the Docker containerizer, Docker engine, and a registry that
needs a login (the service pushes with its own, the agents pull with theirs)."""

from __future__ import annotations

import asyncio

import docker
import pytest

from mesosspawner.images.service.builder import FINISHED, Builder, Limits
from mesosspawner.images.service.container_build import ContainerBuild
from mesosspawner.images.store import ImageStore
from mesosspawner.images.userimages import USER_NAMESPACE, validate_request
from tests.images_service.hostile import push_hostile_base
from tests.images_service.hubsetup import images_hub, service, wait_build, wait_service
from tests.services.docker import image_exists
from tests.services.e2e import start_ready

pytestmark = pytest.mark.timeout(2400)

ROOTSH = ["/usr/local/bin/rootsh", "-p", "-c", "id -u"]
ROOTPY = [
    "/usr/local/bin/rootpy",
    "-c",
    "import os; os.setuid(0); print(os.getuid(), os.geteuid())",
]


def notebook_container(client, task_id: str):
    (container,) = [
        c for c in client.containers.list() if task_id in (c.name or "") or task_id in str(c.labels)
    ]
    return container


async def attack(hub, docker_client, user, tag: str) -> dict:
    """Spawn *user*'s server with their image *tag*, run both planted programs in it as the
    notebook runs (``docker exec`` as the container's user), stop it."""
    state = await start_ready(
        hub, user.name, options={"profile": "my-images", "image": f"img-{tag}"}
    )
    container = notebook_container(docker_client, state["task_id"])
    try:
        out = {"user": container.attrs["Config"]["User"], "image": state["image"]}
        for name, argv in (("id", ["id", "-u"]), ("rootsh", ROOTSH), ("rootpy", ROOTPY)):
            code, raw = container.exec_run(argv)
            out[name] = (code, raw.decode(errors="replace").strip())
        code, raw = container.exec_run(["stat", "-c", "%a", "/usr/local/bin/rootsh"])
        out["mode"] = raw.decode().strip()
        return out
    finally:
        await hub.stop_server(user.name)


async def test_planted_setuid_shell_cannot_reach_euid_0_in_the_notebook(
    hub_factory,
    clusters,
    homes,
    test_users,
    registry,
    notebook_image,
    auth_registry,
    docker_engine,
    docker_client,
    tmp_path,
    monkeypatch,
):
    if not image_exists(docker_client, notebook_image):
        repo, _, tag = notebook_image.rpartition(":")
        docker_client.images.pull(repo, tag=tag)
    hostile = push_hostile_base(docker_client, notebook_image, auth_registry)
    store = tmp_path / "state" / "images.json"
    hub = await images_hub(
        hub_factory,
        clusters,
        homes,
        auth_registry.address,
        notebook_image,
        bases={"hostile": hostile},
        store=store,
        docker_config=auth_registry.docker_config("images-service", tmp_path / "service"),
        agent_docker_config=auth_registry.docker_config("agents", tmp_path / "agents"),
    )
    alice = test_users[0]
    await hub.create_user(alice.name)
    await wait_service(hub, alice.name)

    # Through the service: the package plants both; the last step strips both.
    code, body = await service(
        hub, alice.name, "POST", "api/builds", {"base": "hostile", "pip": ["plantshell"]}
    )
    assert code == 202, body
    built = await wait_build(hub, alice.name, body["build"]["id"])
    assert built["status"] == "done", "\n".join(built["log"])
    log = "\n".join(built["log"])
    assert "/usr/local/bin/rootsh: setuid and setgid" in log
    assert "/usr/local/bin/rootpy: file capabilities" in log
    assert not image_exists(docker_client, built["ref"])  # removed from the engine after push

    # The control: the same request on the same base, built without the last step (the builder
    # in this process, recording into the hub's store so that "My images" offers it too).
    monkeypatch.setattr(
        ContainerBuild, "_strip", lambda self, container: self.emit("(control: no strip step)")
    )
    builder = Builder(
        auth_registry.address,
        USER_NAMESPACE,
        Limits(build_timeout=1500),
        lambda timeout: docker_engine.client(),
        ImageStore(store, USER_NAMESPACE),
        auth=auth_registry.logins["images-service"],
    )
    request = validate_request(
        username=alice.name,
        uid=alice.uid,
        gid=alice.gid,
        base="hostile-unstripped",  # another base name: another tag for the same content
        bases={"hostile-unstripped": hostile},
        pip="plantshell",
    )
    control = builder.submit(request)
    while control.status not in FINISHED:
        await asyncio.sleep(1)
    assert control.status == "done", "\n".join(control.lines)

    stripped = await attack(hub, docker_client, alice, built["tag"])
    unstripped = await attack(hub, docker_client, alice, control.tag)
    print(f"\nstripped image: {stripped}\ncontrol (no strip step): {unstripped}")

    uid = str(alice.uid)
    for got in (stripped, unstripped):
        # Started as the person (the Docker containerizer's user parameter), never as root.
        assert got["user"] == f"{alice.uid}:{alice.gid}", got
        assert got["id"] == (0, uid), got
    assert stripped["image"] == built["pinned"] and unstripped["image"] == control.pinned
    # The control reaches euid 0 both ways: the attack is real...
    assert unstripped["mode"] == "6755", unstripped
    assert unstripped["rootsh"] == (0, "0"), unstripped
    assert unstripped["rootpy"] == (0, "0 0"), unstripped
    # ...and the stripped image stops both.
    assert stripped["mode"] == "755", stripped
    assert stripped["rootsh"] == (0, uid), stripped
    assert stripped["rootpy"][0] != 0 and "PermissionError" in stripped["rootpy"][1], stripped
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(control.ref)
