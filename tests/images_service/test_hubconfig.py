"""register_images_service: the service, its scopes, the user role and the profile callable."""

from __future__ import annotations

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
    assert (
        service["command"][-6:]
        == [
            "--registry",
            "r:5000",
            "--base",
            "base-notebook=r:5000/mesosspawner/base-notebook:abc",
            "--namespace",
            "mesosspawner-users",
        ][-6:]
    )
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["images-service"]["scopes"] == SERVICE_SCOPES
    assert roles["user"]["scopes"] == ["self", "access:services!service=images"]
    assert callable(c.MesosSpawner.profile_list)
    assert c.MesosSpawner.framework_roles == ["*", "spark"]


async def test_profile_callable_adds_only_the_persons_images():
    from types import SimpleNamespace

    from mesosspawner.images.userimages import UserImage
    from mesosspawner.images.userprofiles import with_user_images

    seen = []

    def lister(registry, username, namespace):
        seen.append(username)
        return [UserImage(registry, f"{namespace}/mss-2dalice/base-notebook", "abc", "sha256:1")]

    profiles = with_user_images([{"display_name": "CPU"}], registry="r:5000", lister=lister)
    spawner = SimpleNamespace(user=SimpleNamespace(name="mss-alice", admin=False), log=None)
    got = await profiles(spawner)
    assert [p.get("slug") for p in got] == [None, "my-images"]
    admin = SimpleNamespace(user=SimpleNamespace(name="root", admin=True), log=None)
    await profiles(admin)
    assert seen == ["mss-alice", None]  # admins list everyone's
