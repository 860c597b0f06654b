"""The service's record of built images: written atomically, read when it changes (pure parse)."""

from __future__ import annotations

import json

import pytest

from mesosspawner.images.errors import ImagesError
from mesosspawner.images.store import ImageStore, Record, parse_records
from mesosspawner.images.userimages import USER_NAMESPACE, image_repo


def rec(user="mss-alice", tag="0123456789ab", digest="sha256:" + "1" * 64) -> Record:
    return Record(
        user=user,
        registry="r:5000",
        repo=image_repo(user, "base-notebook"),
        base="base-notebook",
        tag=tag,
        digest=digest,
    )


def test_records_are_added_replaced_and_read_back(tmp_path):
    store = ImageStore(tmp_path / "state" / "images.json", USER_NAMESPACE)
    assert store.records() == []
    store.add(rec())
    store.add(rec(user="mss-bob"))
    store.add(rec(digest="sha256:" + "2" * 64))  # the same repository and tag: replaced
    assert [(r.user, r.digest[-1]) for r in store.records()] == [
        ("mss-bob", "1"),
        ("mss-alice", "2"),
    ]
    assert [r.user for r in store.of("mss-alice")] == ["mss-alice"]
    # Another reader (the hub) sees the writer's changes.
    reader = ImageStore(store.path, USER_NAMESPACE)
    assert reader.of("mss-bob") == [rec(user="mss-bob")]
    store.add(rec(tag="ba9876543210"))
    assert len(reader.of("mss-alice")) == 2
    assert not [p for p in store.path.parent.iterdir() if p.name.startswith(".images-")]


def test_a_record_not_of_the_persons_path_is_refused_and_skipped_when_read(tmp_path):
    store = ImageStore(tmp_path / "images.json", USER_NAMESPACE)
    with pytest.raises(ImagesError, match="is not 'mss-alice''s"):
        store.add(
            Record(
                "mss-alice",
                "r:5000",
                image_repo("mss-bob", "x"),
                "x",
                "0" * 12,
                "sha256:" + "0" * 64,
            )
        )
    good = rec()
    bad = {**good.__dict__, "tag": "V1.0"}
    records, skipped = parse_records(
        json.dumps({"images": [good.__dict__, bad, 7]}), USER_NAMESPACE
    )
    assert records == [good]
    assert (
        skipped[0]
        == "tag 'V1.0' of mesosspawner-users/mss-2dalice/base-notebook is not a content hash"
    )
    assert skipped[1].startswith("record 7 is not an object")


def test_a_broken_store_is_a_clear_error(tmp_path):
    path = tmp_path / "images.json"
    path.write_text("{not json")
    with pytest.raises(ImagesError, match=f"{path} is not JSON"):
        ImageStore(path, USER_NAMESPACE).records()
