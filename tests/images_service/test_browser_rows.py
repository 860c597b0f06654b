"""The registry browser's rows (no Docker, no registry: the catalog walk is a stub): a person's
own recorded images with spawn links, nobody else's links, planted tags, the cached walk, and a
clear message when the registry cannot be read."""

from __future__ import annotations

import logging

from mesosspawner.images import registry as registry_api
from mesosspawner.images.errors import ImagesError
from mesosspawner.images.registry import TagInfo
from mesosspawner.images.service.app import Service, ServiceConfig
from mesosspawner.images.store import Record
from mesosspawner.images.userimages import image_repo

REG = "r:5000"


def digest(c: str) -> str:
    return "sha256:" + c * 64


def service(tmp_path, monkeypatch, tags, walks):
    def catalog(registry, wanted=None, *, auth=None, known=None):
        walks.append(registry)
        if isinstance(tags, Exception):
            raise tags
        return list(tags)

    monkeypatch.setattr(registry_api, "catalog", catalog)
    svc = Service(ServiceConfig(registry=REG, bases={}, store=str(tmp_path / "images.json")))
    for user, tag, c in (("mss-alice", "a00000000001", "a"), ("root", "c00000000003", "c")):
        svc.store.add(
            Record(user, REG, image_repo(user, "base-notebook"), "base-notebook", tag, digest(c))
        )
    return svc


def info(repo, tag, c, size=100):
    return TagInfo(repo, tag, digest(c), size, "2026-01-01T00:00:00Z")


async def test_rows_spawn_links_planted_tags_and_the_cached_walk(tmp_path, monkeypatch, caplog):
    alice_repo = image_repo("mss-alice", "base-notebook")
    tags = [
        info("mesosspawner/base-notebook", "abc", "0"),
        info(alice_repo, "a00000000001", "a", size=4096),
        info(alice_repo, "V1.0", "e"),  # planted in alice's path
        info(image_repo("root", "base-notebook"), "c00000000003", "c"),
    ]
    walks = []
    svc = service(tmp_path, monkeypatch, tags, walks)
    caplog.set_level(logging.WARNING)
    rows, error = await svc.visible_images("mss-alice", admin=False)
    assert error is None
    got = {(r["kind"], r["tag"]): r for r in rows}
    assert set(got) == {("user", "a00000000001"), ("lab", "abc")}
    assert got[("user", "a00000000001")]["spawn_url"].startswith("/hub/spawn?profile=my-images")
    assert got[("user", "a00000000001")]["size"] == 4096
    assert got[("lab", "abc")]["spawn_url"] is None
    assert f"not showing {alice_repo}:V1.0 to mss-alice" in caplog.text

    rows, _ = await svc.visible_images("root", admin=True)
    got = {(r["kind"], r["tag"]): r for r in rows}
    assert got[("user", "c00000000003")]["spawn_url"]  # the admin's own
    assert got[("user", "a00000000001")]["spawn_url"] is None  # alice's: listed, no link
    assert got[("unrecorded", "V1.0")]["spawn_url"] is None
    assert len(walks) == 1  # three page views, one walk of the registry
    svc.catalog.invalidate()  # what a push does
    await svc.visible_images("mss-alice", admin=False)
    assert len(walks) == 2


async def test_an_unreadable_registry_is_a_message_and_own_images_stay_listed(
    tmp_path, monkeypatch
):
    walks = []
    refused = ImagesError("registry r:5000 requires a login (401 for http://r:5000/v2/_catalog)")
    svc = service(tmp_path, monkeypatch, refused, walks)
    rows, error = await svc.visible_images("mss-alice", admin=False)
    assert error == f"The registry could not be read: {refused}"
    assert [(r["kind"], r["tag"], r["size_text"]) for r in rows] == [("user", "a00000000001", "?")]
