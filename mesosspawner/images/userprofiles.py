"""The spawner's side of user-built images: a callable ``profile_list`` that adds "My images".

Set ``c.MesosSpawner.profile_list = with_user_images(PROFILES, registry=..., store=...)``. Each
person is offered only their own images that the images service built and recorded in its store
(``store.ImageStore``), each pinned by the digest the service pushed, so
``MESOSSPAWNER_IMAGE_DIGEST`` names the exact image. Admins too see only their own: another
person's image is never a choice, let alone a default. The store is read when it changes (one
``stat`` otherwise); the registry is not walked at all when the form is drawn or a server spawns.

The same callable runs when the form is drawn and when ``user_options`` are validated, so a
choice that is not the person's own is refused (HTTP 400) like any unknown choice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any

from jupyterhub.utils import maybe_future

from .errors import ImagesError
from .store import ImageStore, Record
from .userimages import USER_NAMESPACE, UserImage
from .userimages import user_images_profile as _profile

log = logging.getLogger(__name__)


def image_of(record: Record) -> UserImage:
    return UserImage(
        registry=record.registry,
        repo=record.repo,
        tag=record.tag,
        digest=record.digest,
        owner=record.user,
        packages=record.packages,
        created=record.created,
    )


def with_user_images(
    profile_list: Sequence[dict] | Callable[[Any], Any],
    *,
    registry: str,
    store: str | PathLike | ImageStore,
    namespace: str = USER_NAMESPACE,
) -> Callable[[Any], Any]:
    """A ``profile_list`` callable: the admin's profiles plus the person's own built images."""
    images_store = store if isinstance(store, ImageStore) else ImageStore(store, namespace)
    reported: set[str] = set()

    def report(spawner, reasons: list[str]) -> None:
        for why in reasons:
            if why not in reported:  # once per hub process, not on every form render
                reported.add(why)
                spawner.log.warning("My images: %s", why)

    async def profiles(spawner) -> list[dict]:
        base = profile_list
        if callable(base):
            base = await maybe_future(base(spawner))
        base = list(base or [])
        name = spawner.user.name
        try:
            records = await asyncio.to_thread(images_store.of, name)
        except (ImagesError, OSError) as exc:
            # The hub keeps spawning the lab's profiles while the store is unreadable.
            spawner.log.warning("My images of %s not offered: %s", name, exc)
            return base
        report(spawner, [f"{images_store.path}: {why}" for why in images_store.skipped])
        mine = [image_of(r) for r in records if r.registry == registry]
        entry, skipped = _profile(mine)
        report(spawner, skipped)
        return [*base, entry] if entry else base

    return profiles
