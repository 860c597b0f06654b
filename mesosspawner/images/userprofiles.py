"""The spawner's side of user-built images: a callable ``profile_list`` that adds "My images".

Set ``c.MesosSpawner.profile_list = with_user_images(PROFILES, registry=...)``. Each person is
offered the images under their own registry path (admins: everyone's), each pinned by digest, so
``MESOSSPAWNER_IMAGE_DIGEST`` names the exact image. The same callable runs when the form is drawn
and when ``user_options`` are validated, so a choice that is not the person's own is refused
(HTTP 400) like any unknown choice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from jupyterhub.utils import maybe_future

from . import registry as registry_api
from .errors import ImagesError
from .userimages import LABEL_PACKAGES, LABEL_USER, USER_NAMESPACE, UserImage, user_component
from .userimages import user_images_profile as _profile

log = logging.getLogger(__name__)


def list_user_images(
    registry: str, username: str | None, namespace: str = USER_NAMESPACE
) -> list[UserImage]:
    """The images under ``namespace/<user>/`` in *registry* (every user's when username is None).

    Blocking: run it in a thread from async code.
    """
    prefix = f"{namespace}/" + (f"{user_component(username)}/" if username is not None else "")

    def wanted(repo: str) -> bool:
        return repo.startswith(prefix) and repo.count("/") == 2

    out = []
    for info in registry_api.catalog(registry, wanted):
        if not info.digest:
            continue
        out.append(
            UserImage(
                registry=registry,
                repo=info.repo,
                tag=info.tag,
                digest=info.digest,
                owner=info.labels.get(LABEL_USER),
                packages=info.labels.get(LABEL_PACKAGES, ""),
                created=info.created,
            )
        )
    return out


def with_user_images(
    profile_list: Sequence[dict] | Callable[[Any], Any],
    *,
    registry: str,
    namespace: str = USER_NAMESPACE,
    lister: Callable[[str, str | None, str], list[UserImage]] = list_user_images,
) -> Callable[[Any], Any]:
    """A ``profile_list`` callable: the admin's profiles plus the person's own built images."""

    async def profiles(spawner) -> list[dict]:
        base = profile_list
        if callable(base):
            base = await maybe_future(base(spawner))
        base = list(base or [])
        user = spawner.user
        admin = bool(getattr(user, "admin", False))
        try:
            images = await asyncio.to_thread(
                lister, registry, None if admin else user.name, namespace
            )
        except (ImagesError, OSError, ValueError) as exc:
            # The hub keeps spawning the lab's profiles while the registry is away.
            spawner.log.warning("User images of %s not listed: %s", user.name, exc)
            return base
        entry = _profile(images, show_owner=admin)
        return [*base, entry] if entry else base

    return profiles
