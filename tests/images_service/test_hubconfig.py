"""register_images_service: the service, its scopes, the user role and the profile callable."""

from __future__ import annotations

import json
import logging
import os

from traitlets.config import Config

from mesosspawner.images.service.hubconfig import SERVICE_SCOPES, register_images_service


def test_registration_adds_service_roles_and_profile_callable():
    c = Config()
    c.JupyterHub.services = [{"name": "other", "api_token": "x"}]
    c.MesosSpawner.profile_list = [
        {"display_name": "CPU", "slug": "cpu"},
        {"display_name": "Spark", "slug": "spark", "mesosspawner_override": {"role": "spark"}},
    ]
    service = register_images_service(
        c, registry="r:5000", bases={"base-notebook": "r:5000/mesosspawner/base-notebook:abc"}
    )
    assert [s["name"] for s in c.JupyterHub.services] == ["other", "images"]
    assert service["command"][-8:] == [
        "--registry",
        "r:5000",
        "--base",
        "base-notebook=r:5000/mesosspawner/base-notebook:abc",
        "--namespace",
        "mesosspawner-users",
        "--store",
        os.path.abspath("images-service/images.json"),
    ]
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["images-service"]["scopes"] == SERVICE_SCOPES
    assert roles["user"]["scopes"] == ["self", "access:services!service=images"]
    assert callable(c.MesosSpawner.profile_list)
    assert c.MesosSpawner.framework_roles == ["*", "spark"]


def record(user: str, tag: str, **kw) -> dict:
    from mesosspawner.images.userimages import image_repo

    return {
        "user": user,
        "registry": "r:5000",
        "repo": image_repo(user, "base-notebook"),
        "base": "base-notebook",
        "tag": tag,
        "digest": "sha256:" + tag[0] * 64,
        "packages": "pip: six",
        "created": "2026-01-0" + tag[-1],
        **kw,
    }


async def test_my_images_offers_only_the_persons_recorded_images_admins_included(tmp_path):
    from types import SimpleNamespace

    from mesosspawner.images.userprofiles import with_user_images

    store = tmp_path / "images.json"
    store.write_text(
        json.dumps(
            {
                "version": 1,
                "images": [
                    record("mss-alice", "a00000000001"),
                    record("mss-bob", "b00000000002"),
                    record("root", "c00000000003"),
                    # Not what the service writes: skipped with a log line, nothing breaks.
                    record("mss-alice", "V1.0"),
                    record("mss-alice", "d00000000004", repo="mesosspawner-users/mss-2dbob/x"),
                    record("mss-alice", "e00000000005", registry="elsewhere:5000"),
                ],
            }
        )
    )
    profiles = with_user_images([{"display_name": "CPU"}], registry="r:5000", store=store)
    log = logging.getLogger("test-my-images")

    def spawner(name, admin=False):
        return SimpleNamespace(user=SimpleNamespace(name=name, admin=admin), log=log)

    def offered(got):
        (mine,) = [p for p in got if p.get("slug") == "my-images"]
        choices = mine["profile_options"]["image"]["choices"]
        return {slug: c["mesosspawner_override"]["image"] for slug, c in choices.items()}

    alice = offered(await profiles(spawner("mss-alice")))
    assert alice == {
        "img-a00000000001": "r:5000/mesosspawner-users/mss-2dalice/base-notebook@sha256:" + "a" * 64
    }
    admin = offered(await profiles(spawner("root", admin=True)))
    assert list(admin) == ["img-c00000000003"]  # the admin's own, nobody else's
    carol = await profiles(spawner("mss-carol"))
    assert [p.get("display_name") for p in carol] == ["CPU"]  # nothing built: no My images
