"""The images service against a hostile registry and a memory-hungry build: real hub, proxy,
localmesos (Docker containerizer), Docker engine, and a registry that needs a login."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import markupsafe
import pytest

from mesosspawner.images.lab import split_ref
from mesosspawner.images.userimages import image_repo
from tests.images_service.hostile import push_hostile_base
from tests.images_service.hubsetup import images_hub, service, wait_build, wait_service
from tests.services.docker import image_exists
from tests.services.e2e import logged_in_get, start_ready

pytestmark = pytest.mark.timeout(2400)


@pytest.fixture
def hostile_base(docker_client, notebook_image, auth_registry) -> str:
    if not image_exists(docker_client, notebook_image):
        repo, _, tag = notebook_image.rpartition(":")
        docker_client.images.pull(repo, tag=tag)
    return push_hostile_base(docker_client, notebook_image, auth_registry)


async def secure_hub(
    hub_factory, clusters, homes, auth_registry, notebook_image, base, tmp_path, *args
):
    return await images_hub(
        hub_factory,
        clusters,
        homes,
        auth_registry.address,
        notebook_image,
        bases={"hostile": base},
        store=tmp_path / "state" / "images.json",
        docker_config=auth_registry.docker_config("images-service", tmp_path / "service"),
        agent_docker_config=auth_registry.docker_config("agents", tmp_path / "agents"),
        extra_args=args,
    )


async def build(hub, user: str, pip: list[str]) -> dict:
    code, body = await service(hub, user, "POST", "api/builds", {"base": "hostile", "pip": pip})
    assert code == 202, body
    return await wait_build(hub, user, body["build"]["id"])


async def spawn_form(hub, user: str) -> tuple[int, str]:
    """The spawn page as the person sees it (the options form draws "My images")."""
    return await asyncio.to_thread(logged_in_get, hub.url, user, f"/hub/spawn/{user}")


def plant(client, auth_registry, source: str, repo: str, tag: str) -> None:
    """Push *source* as ``repo:tag`` with CI's login: someone with push rights, or a registry
    that was anonymous once, put it in another person's path."""
    target = f"{auth_registry.address}/{repo}"
    client.images.get(source).tag(target, tag=tag)
    login = auth_registry.logins["ci"].auth_config()
    for item in client.api.push(target, tag=tag, stream=True, decode=True, auth_config=login):
        assert "error" not in item, item
    client.images.remove(f"{target}:{tag}")


async def test_planted_images_and_bad_tags_are_not_offered_admins_see_only_their_own(
    hub_factory,
    clusters,
    homes,
    test_users,
    notebook_image,
    auth_registry,
    hostile_base,
    docker_client,
    tmp_path,
):
    hub = await secure_hub(
        hub_factory, clusters, homes, auth_registry, notebook_image, hostile_base, tmp_path
    )
    alice, bob, carol = test_users
    for user in test_users:
        await hub.create_user(user.name)
    code, _ = await hub.api("PATCH", f"/users/{carol.name}", json={"admin": True})
    assert code == 200
    await wait_service(hub, alice.name)
    mine = await build(hub, alice.name, [])
    admins = await build(hub, carol.name, [])
    assert mine["status"] == admins["status"] == "done", mine["log"] + admins["log"]

    # Planted with a push login: a look-alike image in bob's path, and tags outside the slug
    # grammar in bob's and alice's paths.
    for who, tag in ((bob, "0123456789ab"), (bob, "V1.0"), (alice, "V1.0")):
        plant(docker_client, auth_registry, hostile_base, image_repo(who.name, "hostile"), tag)

    # Bob: no images of his own, so no "My images" at all; naming the planted one is refused.
    code, page = await spawn_form(hub, bob.name)
    assert code == 200, page
    assert "my-images" not in page and "0123456789ab" not in page
    code, body = await hub.start_server_response(
        bob.name, options={"profile": "my-images", "image": "img-0123456789ab"}
    )
    assert code == 400, body
    code, body = await service(hub, bob.name, path="api/images")
    assert code == 200 and not [r for r in body["images"] if "mesosspawner-users" in r["repo"]]

    # Alice: her image only; the bad tag beside it is skipped with a log line, and her spawn
    # works (it used to be a 500 for every spawn of hers).
    code, page = await spawn_form(hub, alice.name)
    assert code == 200, page
    assert f"img-{mine['tag']}" in page and "V1.0" not in page and admins["tag"] not in page
    code, body = await service(hub, alice.name, path="api/images")
    users = [r for r in body["images"] if r["kind"] != "lab"]
    assert [(r["tag"], r["kind"]) for r in users] == [(mine["tag"], "user")], users
    assert users[0]["spawn_url"] and users[0]["pinned"] == mine["pinned"]
    assert f"not showing {image_repo(alice.name, 'hostile')}:V1.0 to {alice.name}" in hub.log_text()
    state = await start_ready(
        hub, alice.name, options={"profile": "my-images", "image": f"img-{mine['tag']}"}
    )
    assert state["image"] == mine["pinned"]  # pulled by the agent with its own login
    await hub.stop_server(alice.name)

    # Carol, an admin: her "My images" offers her own image only (so it is the default); the
    # browser lists alice's and the planted ones, with no link to start any of them.
    code, page = await spawn_form(hub, carol.name)
    assert code == 200, page
    assert f"img-{admins['tag']}" in page and f"img-{mine['tag']}" not in page
    code, body = await hub.start_server_response(
        carol.name, options={"profile": "my-images", "image": f"img-{mine['tag']}"}
    )
    assert code == 400, body
    code, body = await service(hub, carol.name, path="api/images")
    rows = {(r["repo"].split("/")[1], r["tag"]): r for r in body["images"] if r["kind"] != "lab"}
    assert rows[("mss-2dcarol", admins["tag"])]["spawn_url"]
    assert rows[("mss-2dalice", mine["tag"])]["spawn_url"] is None
    for key in (("mss-2dbob", "0123456789ab"), ("mss-2dbob", "V1.0"), ("mss-2dalice", "V1.0")):
        assert rows[key]["kind"] == "unrecorded" and rows[key]["spawn_url"] is None, rows[key]

    # Anonymous pushes are refused, by the registry's API and through the engine.
    address = auth_registry.address
    request = urllib.request.Request(
        f"http://{address}/v2/{image_repo(alice.name, 'hostile')}/blobs/uploads/", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    target = f"{address}/{image_repo(bob.name, 'hostile')}"
    docker_client.images.get(hostile_base).tag(target, tag="anonymous")
    try:
        out = list(docker_client.api.push(target, tag="anonymous", stream=True, decode=True))
    finally:
        docker_client.images.remove(f"{target}:anonymous")
    assert any("no basic auth credentials" in str(item.get("error", "")) for item in out), out
    # Nor can anyone pull anonymously (the agents pull with their login): carol's image, which
    # is in no engine since its push.
    repo, _ = split_ref(admins["ref"])
    assert not image_exists(docker_client, admins["pinned"])
    with pytest.raises(Exception, match="no basic auth credentials|unauthorized"):
        docker_client.images.pull(repo, tag=admins["digest"])


async def test_a_build_over_its_memory_limit_fails_clearly_and_the_hub_keeps_serving(
    hub_factory,
    clusters,
    homes,
    test_users,
    notebook_image,
    auth_registry,
    hostile_base,
    tmp_path,
):
    hub = await secure_hub(
        hub_factory,
        clusters,
        homes,
        auth_registry,
        notebook_image,
        hostile_base,
        tmp_path,
        "--build-memory",
        "256M",
    )
    user = test_users[1]
    await hub.create_user(user.name)
    await wait_service(hub, user.name)
    failed = await build(hub, user.name, ["memhog"])
    assert failed["status"] == "failed", failed["log"]
    assert failed["error"].startswith(
        "the build ran out of memory: it needs more than this hub's limit of 256 MiB"
    ), failed["error"]
    assert failed["error"] in failed["log"][-1]
    # The hub, the service and the engine go on: the page, the API, and the next build.
    code, _ = await hub.api("GET", "/")
    assert code == 200
    code, page = await service(hub, user.name, path="")
    assert code == 200 and str(markupsafe.escape(failed["error"])) in page
    fine = await build(hub, user.name, [])
    assert fine["status"] == "done", fine["log"]
