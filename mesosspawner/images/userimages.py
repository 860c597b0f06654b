"""User-built notebook images: validate a person's request, fill the Dockerfile template, name it.

Pure: plain data in, plain data out (no clock, no network, no engine). The service
(``mesosspawner.images.service``) does the I/O around it, and ``with_user_images`` turns a person's
images into a profile the spawner offers (its registry look-up is injected).

A request is a lab base image (pinned by digest), extra Debian and PyPI packages, and the person's
name/uid/gid. Package strings are checked against strict grammars, never passed through a shell
unquoted, and the Dockerfile is a fixed template: a request cannot add a line of its own. The
image's tag is a hash of the canonical request, so an identical request names an image the
registry already has, and nothing is built again.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..naming import escape

# Bump when the template changes: every tag changes with it, so old images are never mistaken
# for what the new template would build.
TEMPLATE_VERSION = "2"
HASH_LENGTH = 12
USER_NAMESPACE = "mesosspawner-users"
LABEL_PREFIX = "org.mesosspawner."
LABEL_USER = LABEL_PREFIX + "user"
LABEL_HASH = LABEL_PREFIX + "content-hash"
LABEL_BASE = LABEL_PREFIX + "base"
LABEL_DOCKERFILE = LABEL_PREFIX + "dockerfile"
LABEL_PACKAGES = LABEL_PREFIX + "packages"
PROFILE_SLUG = "my-images"
OPTION_SLUG = "image"
NOTEBOOK_PIP = "/opt/notebook/bin/pip"  # the lab's notebook venv (docker/base-notebook)

MAX_PACKAGES = 20
MAX_PACKAGE_LENGTH = 100

# PEP 508 names: letters and digits, with ".", "_" or "-" inside.
_PIP_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
# One version clause: an operator and a PEP 440 version ("1.2", "2.0rc1", "1.*" for == and !=).
_PIP_OP = r"==|!=|<=|>=|~=|<|>"
_PIP_VERSION = r"[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?"
_PIP_SPEC = re.compile(
    rf"(?P<name>{_PIP_NAME})(?:(?P<op>{_PIP_OP})(?P<version>{_PIP_VERSION}(?:\.\*)?))?"
)
# Debian Policy 5.6.1: lower-case letters, digits, "+", "-", "."; at least two characters,
# starting with a letter or digit.
_APT_NAME = re.compile(r"[a-z0-9][a-z0-9+.-]+")
# docker-stacks NB_USER, as the spawner passes it (a POSIX-portable user name).
_NB_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_BASE_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DIGEST_REF = re.compile(r"[^\s@]+@sha256:[0-9a-f]{64}")


class RequestError(ValueError):
    """A refused build request; the message names the offending value and says what is allowed."""


@dataclass(frozen=True)
class BuildRequest:
    """A validated request: everything the Dockerfile and the content hash depend on."""

    username: str  # the JupyterHub user name
    base: str  # slug of a lab base image ("base-notebook")
    base_ref: str  # that image pinned by digest, REPO@sha256:...
    nb_user: str
    uid: int
    gid: int
    apt: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()

    def canonical(self) -> dict[str, Any]:
        return {
            "template": TEMPLATE_VERSION,
            "username": self.username,
            "base": self.base,
            "base_ref": self.base_ref,
            "nb_user": self.nb_user,
            "uid": self.uid,
            "gid": self.gid,
            "apt": list(self.apt),
            "pip": list(self.pip),
        }

    @property
    def content_hash(self) -> str:
        """Tag of the image: the same request always gives the same hash."""
        data = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(data.encode()).hexdigest()[:HASH_LENGTH]

    def packages_summary(self) -> str:
        parts = [f"apt: {' '.join(self.apt)}"] if self.apt else []
        parts += [f"pip: {' '.join(self.pip)}"] if self.pip else []
        return "; ".join(parts) or "no extra packages"


# ---------------------------------------------------------------------------- validation


def split_packages(raw: str | Sequence[str] | None, what: str) -> list[str]:
    """A text field (whitespace-separated) or a JSON list of strings, as a list of strings."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return raw.split()
    if isinstance(raw, list | tuple) and all(isinstance(p, str) for p in raw):
        return [p.strip() for p in raw if p.strip()]
    raise RequestError(f"{what} packages must be text or a list of strings, not {_echo(raw)}")


def _echo(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalize_pip_name(name: str) -> str:
    """PEP 503 normalization: ``Foo_Bar.baz`` and ``foo-bar-baz`` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def validate_pip(spec: str) -> str:
    """One pip requirement ``NAME`` or ``NAME<op>VERSION``, normalized; else RequestError."""
    if not isinstance(spec, str):
        raise RequestError(f"pip package {_echo(spec)} must be a string")
    match = _PIP_SPEC.fullmatch(spec) if len(spec) <= MAX_PACKAGE_LENGTH else None
    if not match:
        raise RequestError(
            f"pip package {_echo(spec)} is refused: give a package name with at most one version "
            "clause and no spaces, such as 'requests' or 'requests>=2.31' (letters, digits, "
            "'.', '_', '-'; operators == != <= >= ~= < >); nothing was built"
        )
    if match["version"] and match["version"].endswith(".*") and match["op"] not in ("==", "!="):
        raise RequestError(
            f"pip package {_echo(spec)} is refused: a '.*' version works only with == or !="
            "; nothing was built"
        )
    name = normalize_pip_name(match["name"])
    return f"{name}{match['op']}{match['version']}" if match["op"] else name


def validate_apt(name: str) -> str:
    """One Debian package name (Debian Policy 5.6.1), no version or release; else RequestError."""
    if not isinstance(name, str):
        raise RequestError(f"apt package {_echo(name)} must be a string")
    if len(name) > MAX_PACKAGE_LENGTH or not _APT_NAME.fullmatch(name):
        raise RequestError(
            f"apt package {_echo(name)} is refused: a Debian package name is lower-case letters, "
            "digits and '+', '-', '.', at least two characters, starting with a letter or digit "
            "(e.g. 'graphviz'); nothing was built"
        )
    return name


def _unique_sorted(items: Iterable[str], key) -> tuple[str, ...]:
    out: dict[str, str] = {}
    for item in items:
        k = key(item)
        if k in out and out[k] != item:
            raise RequestError(f"package {k!r} is listed twice with different versions")
        out[k] = item
    return tuple(out[k] for k in sorted(out))


def nb_user_for(username: str) -> str:
    """NB_USER for the image: the person's name when it is a portable user name, else jovyan."""
    return username if _NB_USER.fullmatch(username) else "jovyan"


def validate_request(
    *,
    username: str,
    uid: int | None,
    gid: int | None,
    base: Any,
    bases: Mapping[str, str],
    apt: Any = None,
    pip: Any = None,
    max_packages: int = MAX_PACKAGES,
    allow_apt: bool = True,
) -> BuildRequest:
    """Check a person's request against the lab's bases and the package grammars.

    ``bases``: base slug -> that image pinned by digest. ``uid``/``gid``: the person's ids as
    the spawner resolves them (None: unknown, refused: the image would bake in a wrong user).
    """
    if not isinstance(username, str) or not username:
        raise RequestError("a build needs the person's user name")
    if not bases:
        raise RequestError("this service has no base images configured; ask an administrator")
    if not isinstance(base, str) or base not in bases:
        raise RequestError(f"base {_echo(base)} is not one of the lab's images: {', '.join(bases)}")
    base_ref = bases[base]
    if not _DIGEST_REF.fullmatch(base_ref):
        raise RequestError(f"base {base!r} is not pinned by digest ({base_ref!r})")
    for what, value in (("uid", uid), ("gid", gid)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RequestError(
                f"no {what} known for {username!r} ({value!r}): the image bakes in the person's "
                "uid and gid; ask an administrator to create the system user"
            )
    if uid == 0:
        raise RequestError(f"refusing to build an image whose notebook user {username!r} is root")
    apt_list = [validate_apt(p) for p in split_packages(apt, "apt")]
    pip_list = [validate_pip(p) for p in split_packages(pip, "pip")]
    if apt_list and not allow_apt:
        raise RequestError("apt packages are not allowed on this hub; use pip packages")
    if len(apt_list) + len(pip_list) > max_packages:
        raise RequestError(
            f"{len(apt_list) + len(pip_list)} packages requested; the limit is {max_packages}"
        )
    return BuildRequest(
        username=username,
        base=base,
        base_ref=base_ref,
        nb_user=nb_user_for(username),
        uid=uid,
        gid=gid,
        apt=_unique_sorted(apt_list, lambda a: a),
        pip=_unique_sorted(pip_list, lambda p: re.split(_PIP_OP, p, maxsplit=1)[0]),
    )


# ---------------------------------------------------------------------------- naming


def user_component(username: str) -> str:
    """The registry path component of a person: ``naming.escape`` of the name.

    A Docker path component cannot start with ``-`` (a name starting with an escaped character):
    those get ``x-`` in front, which no other name can produce (escape never emits ``--``).
    """
    escaped = escape(username)
    return f"x-{escaped}" if escaped.startswith("-") else escaped


def image_repo(username: str, base: str, namespace: str = USER_NAMESPACE) -> str:
    """``NAMESPACE/USER/BASE``: a person's images of one base (tags are content hashes)."""
    if not _BASE_SLUG.fullmatch(base):
        raise RequestError(f"base {base!r} is not a valid image name")
    return f"{namespace}/{user_component(username)}/{base}"


def owner_of(repo: str, namespace: str = USER_NAMESPACE) -> str | None:
    """The escaped user component of a user image repository, or None for the lab's images."""
    parts = repo.split("/")
    if len(parts) == 3 and parts[0] == namespace:
        return parts[1]
    return None


# ---------------------------------------------------------------------------- Dockerfile

# The whole Dockerfile. Every substituted value has passed a grammar above and is shell-quoted:
# the request chooses values, never lines. The service runs the RUN line in a build container
# with memory, CPU and pids limits and commits it with the ENV and labels (``builder``); the
# last step is done from outside that container, where nothing the packages installed can
# interfere with it.
_TEMPLATE = """\
# Generated by mesosspawner-images serve for {username_comment}; regenerated, never edited.
FROM {base_ref}
USER root
RUN {run}
ENV NB_USER={nb_user} NB_UID={uid} NB_GID={gid}
# Last step, by the service from outside the build container: setuid/setgid bits and file
# capabilities are stripped from every file (as `chmod ug-s` and `setcap -r` would).
"""


def _steps(req: BuildRequest) -> list[str]:
    q = shlex.quote
    steps = []
    if req.apt:
        steps += [
            "apt-get update",
            "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "
            + " ".join(q(p) for p in req.apt),
            "rm -rf /var/lib/apt/lists/*",
        ]
    if req.pip:
        steps.append(f"{NOTEBOOK_PIP} install --no-cache-dir " + " ".join(q(p) for p in req.pip))
    # The person's own account in the image (docker-stacks: jovyan renamed to NB_USER with
    # NB_UID/NB_GID), so `id` names them even when the container starts as their uid directly.
    steps += [
        f"(getent group {req.gid} >/dev/null || groupadd --gid {req.gid} {q(req.nb_user)})",
        f"usermod --non-unique --uid {req.uid} --gid {req.gid}"
        + (
            f" --login {q(req.nb_user)} --home /home/{req.nb_user} --move-home"
            if req.nb_user != "jovyan"
            else ""
        )
        + " jovyan",
        f"chown {req.uid}:{req.gid} /home/{req.nb_user}",
    ]
    return steps


def _run_line(req: BuildRequest) -> str:
    return " \\\n    && ".join(_steps(req))


def run_script(req: BuildRequest) -> str:
    """The shell script of the RUN line, as the build container runs it (``/bin/sh -c``)."""
    return " && ".join(_steps(req))


def image_env(req: BuildRequest) -> dict[str, str]:
    """The ENV line: what the image's start script maps the container user to."""
    return {"NB_USER": req.nb_user, "NB_UID": str(req.uid), "NB_GID": str(req.gid)}


def render_dockerfile(req: BuildRequest) -> str:
    """The Dockerfile for *req* (the template above, nothing else)."""
    comment = re.sub(r"[^A-Za-z0-9@._+-]", "?", req.username)[:64]
    return _TEMPLATE.format(
        username_comment=comment,
        base_ref=req.base_ref,
        run=_run_line(req),
        nb_user=req.nb_user,
        uid=req.uid,
        gid=req.gid,
    )


def labels(req: BuildRequest, dockerfile: str) -> dict[str, str]:
    """Image labels: who, from what, with which hash, and the Dockerfile itself."""
    return {
        LABEL_USER: req.username,
        LABEL_HASH: req.content_hash,
        LABEL_BASE: req.base_ref,
        LABEL_PACKAGES: req.packages_summary(),
        LABEL_DOCKERFILE: dockerfile,
    }


# ---------------------------------------------------------------------------- profile


@dataclass(frozen=True)
class UserImage:
    """A built image in the registry, as the profile form and the browser show it."""

    registry: str
    repo: str  # NAMESPACE/USER/BASE
    tag: str  # the content hash
    digest: str
    owner: str | None = None  # the JupyterHub user name (from the image's label)
    packages: str = ""
    created: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def pinned(self) -> str:
        return f"{self.registry}/{self.repo}@{self.digest}"

    @property
    def slug(self) -> str:
        # Content hashes include the user name: unique across people, stable across listings.
        return f"img-{self.tag}"


# What every "My images" choice sets, whatever the admin's defaults: the Docker containerizer
# (the one whose containers the hub starts as the person's uid:gid, with Docker's parameters such
# as no-new-privileges), no GPUs (only the Mesos containerizer has them), never root.
USER_IMAGE_OVERRIDE: Mapping[str, Any] = {
    "containerizer": "docker",
    "gpus": 0,
    "allow_root": False,
    "image_starts_as_root": False,
}
# profiles.py's slug grammar, with the "img-" prefix; at most 63 characters.
_IMAGE_SLUG = re.compile(r"img-[a-z0-9]+(?:[-_][a-z0-9]+)*")


def unusable(image: UserImage) -> str | None:
    """Why *image* cannot be a profile choice (its tag makes no valid slug), or None."""
    if not _IMAGE_SLUG.fullmatch(image.slug) or len(image.slug) > 63:
        return (
            f"tag {image.tag!r} of {image.repo} makes no profile slug (lower-case letters, digits,"
            " '-' and '_'): skipped"
        )
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", image.digest):
        return f"{image.repo}:{image.tag} has no sha256 digest ({image.digest!r}): skipped"
    return None


def user_images_profile(images: Sequence[UserImage]) -> tuple[dict | None, list[str]]:
    """A ``profile_list`` entry offering *images*, each pinned by digest (None when there are
    none), and why each image left out was left out (for the caller's log)."""
    skipped, usable = [], []
    for image in images:
        why = unusable(image)
        if why:
            skipped.append(why)
        else:
            usable.append(image)
    if not usable:
        return None, skipped
    choices = {}
    for i, image in enumerate(sorted(usable, key=lambda im: (im.created, im.tag), reverse=True)):
        base = image.repo.rsplit("/", 1)[-1]
        choices[image.slug] = {
            "display_name": f"{base} + {image.packages or 'no extras'} ({image.tag})",
            "default": i == 0,
            "mesosspawner_override": {"image": image.pinned, **USER_IMAGE_OVERRIDE},
        }
    profile = {
        "display_name": "My images",
        "slug": PROFILE_SLUG,
        "description": "Images you built with the images service, pinned by digest.",
        "profile_options": {OPTION_SLUG: {"display_name": "Image", "choices": choices}},
    }
    return profile, skipped


# ---------------------------------------------------------------------------- the last step

PRIVILEGE_BITS = 0o6000  # setuid, setgid
CAPABILITY_XATTR = "security.capability"


def privileged(path: str, mode: int, xattrs: Iterable[str], is_file: bool) -> str | None:
    """Why the file at *path* of an image would give a notebook privileges, or None.

    A setuid/setgid regular file (or hard link) runs as its owner; a file capability grants
    capabilities on exec. Directories' setgid bit (group inheritance) is harmless and kept.
    """
    why = []
    if is_file and mode & PRIVILEGE_BITS:
        why.append(
            "setuid and setgid"
            if mode & PRIVILEGE_BITS == PRIVILEGE_BITS
            else "setuid"
            if mode & 0o4000
            else "setgid"
        )
    if any(name == CAPABILITY_XATTR for name in xattrs):
        why.append("file capabilities")
    return f"/{path.lstrip('/')}: {' and '.join(why)}" if why else None


def spawn_query(image: UserImage) -> dict[str, str]:
    """Query arguments of ``/hub/spawn`` that start a server with *image*."""
    return {
        "profile": PROFILE_SLUG,
        f"profile-option-{PROFILE_SLUG}--{OPTION_SLUG}": image.slug,
    }
