"""A package that plants a setuid-root shell and a python with the cap_setuid file capability at
build time (its setup.py runs as root) does not give the person euid 0 in their notebook. Two
layers stop it, each shown alone: the images service strips both as the build's last step, and
notebooks run with no-new-privileges and no capabilities. Positive control: the same image built
without the strip step, run with Docker's default privileges, does reach euid 0.

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
from tests.services.docker import find_container, image_exists
from tests.services.e2e import start_ready

pytestmark = pytest.mark.timeout(2400)

ROOTSH = ["/usr/local/bin/rootsh", "-p", "-c", "id -u"]
ROOTPY = [
    "/usr/local/bin/rootpy",
    "-c",
    "import os; os.setuid(0); print(os.getuid(), os.geteuid())",
]


def notebook_container(client, task_id: str):
    container = find_container(
        client, lambda c: task_id in str(c.get("Names")) or task_id in str(c.get("Labels"))
    )
    assert container is not None, f"no container of task {task_id}"
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


def bare_attack(client, ref: str, user, login) -> dict:
    """Both planted programs in ``ref`` run as the person with Docker's default privileges
    (no ``no-new-privileges``, default capabilities): each layer of defence alone."""
    client.images.pull(ref, auth_config={"username": login.username, "password": login.password})
    out = {}
    try:
        for name, argv in (("rootsh", ROOTSH), ("rootpy", ROOTPY)):
            try:
                raw = client.containers.run(
                    ref,
                    argv,
                    entrypoint=[],
                    user=f"{user.uid}:{user.gid}",
                    remove=True,
                    stderr=True,
                )
                out[name] = (0, raw.decode(errors="replace").strip())
            except docker.errors.ContainerError as e:
                out[name] = (e.exit_status, (e.stderr or b"").decode(errors="replace").strip())
    finally:
        client.images.remove(ref, force=True)
    return out


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
    assert unstripped["mode"] == "6755" and stripped["mode"] == "755", (unstripped, stripped)
    # The notebooks run with no-new-privileges and no capabilities: neither image reaches
    # euid 0 there, the control included.
    for got in (stripped, unstripped):
        assert got["rootsh"] == (0, uid), got
        assert got["rootpy"][0] != 0, got
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(control.ref)

    # Each layer alone: with Docker's default privileges the control reaches euid 0 (the attack
    # is real), and the strip step alone stops both programs.
    login = auth_registry.logins["agents"]
    bare_unstripped = bare_attack(docker_client, control.pinned, alice, login)
    bare_stripped = bare_attack(docker_client, built["pinned"], alice, login)
    print(f"default privileges: control {bare_unstripped}, stripped {bare_stripped}")
    assert bare_unstripped == {"rootsh": (0, "0"), "rootpy": (0, "0 0")}, bare_unstripped
    assert bare_stripped["rootsh"] == (0, uid), bare_stripped
    assert bare_stripped["rootpy"][0] != 0, bare_stripped
    assert "PermissionError" in bare_stripped["rootpy"][1], bare_stripped
