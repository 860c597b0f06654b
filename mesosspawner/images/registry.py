"""Read a Docker registry (HTTP API v2): repositories, tags, digests, sizes, labels.

Blocking (urllib): callers on an event loop run it in a thread. Loopback registries are spoken to
over plain HTTP, as the Docker engine does; others over HTTPS.

Credentials come from a Docker client config (``config.json``: ``auths.HOST.auth`` is
base64 ``user:password``, or ``username``/``password``), the same file ``docker login`` writes and
Mesos agents take as ``--docker_config``. By default (``auth=AUTO``) the file the Docker CLI
would use: ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``; without one, reads are
anonymous. Credential helpers (``credsStore``) are not consulted.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ImagesError

MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
_INDEX_TYPES = (
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)


@dataclass(frozen=True)
class Credentials:
    """A registry login. ``repr`` hides the password (it may reach a log)."""

    username: str
    password: str = field(repr=False)

    def header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def auth_config(self) -> dict[str, str]:
        """The docker SDK's ``auth_config`` for push and pull."""
        return {"username": self.username, "password": self.password}


class _Auto:
    def __repr__(self) -> str:
        return "AUTO"


AUTO: Any = _Auto()  # credentials from the Docker CLI's config file, if any


def default_config_path() -> Path:
    """Where the Docker CLI keeps its config: ``$DOCKER_CONFIG/config.json`` or ~/.docker/."""
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return Path(base) / "config.json"


def load_docker_config(path: str | os.PathLike | None) -> dict:
    """The JSON of a Docker client config file; ``{}`` when *path* is None."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ImagesError(f"docker config {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise ImagesError(f"docker config {path} cannot be read as JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ImagesError(f"docker config {path} must hold a JSON object with 'auths'")
    return data


def credentials_for(registry: str, config: dict) -> Credentials | None:
    """The login for *registry* (``HOST:PORT``) in a Docker config's ``auths``, or None."""
    auths = config.get("auths") or {}
    if not isinstance(auths, dict):
        raise ImagesError("docker config: 'auths' must be an object of registry -> login")
    entry = None
    for key, value in auths.items():
        host = urllib.parse.urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]
        if host == registry:
            entry = value
            break
    if not isinstance(entry, dict):
        return None
    if entry.get("auth"):
        try:
            user, sep, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            sep = ""
        if not sep:
            raise ImagesError(
                f"docker config: the 'auth' of {registry} is not base64 of USER:PASSWORD"
            )
        return Credentials(user, password)
    if entry.get("username") and entry.get("password") is not None:
        return Credentials(str(entry["username"]), str(entry["password"]))
    return None


def docker_config_json(logins: dict[str, Credentials]) -> str:
    """A Docker config (what ``--docker_config`` and ``DOCKER_CONFIG`` take) for *logins*."""
    auths = {
        registry: {"auth": base64.b64encode(f"{c.username}:{c.password}".encode()).decode()}
        for registry, c in logins.items()
    }
    return json.dumps({"auths": auths}, indent=2) + "\n"


def resolve(registry: str, auth: Credentials | None | _Auto) -> Credentials | None:
    if isinstance(auth, _Auto):
        path = default_config_path()
        return credentials_for(registry, load_docker_config(path)) if path.is_file() else None
    return auth


@dataclass
class TagInfo:
    repo: str
    tag: str
    digest: str
    size: int | None  # compressed: config + layers, as pushed
    created: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    media_type: str = ""


def base_url(registry: str) -> str:
    host = registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry
    scheme = "http" if host in ("localhost", "127.0.0.1", "[::1]", "::1") else "https"
    return f"{scheme}://{registry}"


def _refused(registry: str, url: str, code: int, auth: Credentials | None) -> ImagesError:
    if code == 401 and auth is None:
        return ImagesError(
            f"registry {registry} requires a login (401 for {url}): give the service a Docker "
            f"config with credentials for {registry} (--docker-config, or `docker login "
            f"{registry}` for the command line)"
        )
    if code in (401, 403):
        return ImagesError(
            f"registry {registry} refused the login of {auth.username!r} ({code} for {url}): "
            "check the user and password in the Docker config"
            if auth
            else f"registry {registry} denied {url} ({code})"
        )
    return ImagesError(f"registry {registry} answered {code} for {url}")


def _request(
    registry: str,
    path: str,
    auth: Credentials | None,
    *,
    method: str = "GET",
    accept: str | None = None,
    timeout: float = 30.0,
):
    """(body, headers), or None for 404; ImagesError for anything else that is not 2xx."""
    url = base_url(registry) + path
    headers = {"Accept": accept} if accept else {}
    if auth is not None:
        headers["Authorization"] = auth.header()
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise _refused(registry, url, exc.code, auth) from None
    except (urllib.error.URLError, OSError) as exc:
        raise ImagesError(
            f"cannot reach registry {registry} ({url}): {getattr(exc, 'reason', exc)}; "
            "a registry is HOST:PORT of a running Docker registry"
        ) from None
    with resp:
        return resp.read(), dict(resp.headers)


def repositories(registry: str, page: int = 1000, *, auth=AUTO) -> list[str]:
    """Every repository in the registry's catalog (following pagination)."""
    auth = resolve(registry, auth)
    out: list[str] = []
    path = f"/v2/_catalog?n={page}"
    while path:
        got = _request(registry, path, auth)
        if got is None:
            break
        body, headers = got
        out += json.loads(body).get("repositories") or []
        link = headers.get("Link", "")
        path = ""
        if 'rel="next"' in link:
            target = link.split(";", 1)[0].strip().strip("<>")
            path = urllib.parse.urlsplit(target)._replace(scheme="", netloc="").geturl()
    return out


def tags(registry: str, repo: str, *, auth=AUTO) -> list[str]:
    got = _request(registry, f"/v2/{repo}/tags/list", resolve(registry, auth))
    if got is None:
        return []
    return sorted(json.loads(got[0]).get("tags") or [])


def tag_info(
    registry: str, repo: str, tag: str, *, auth=AUTO, known: dict[str, TagInfo] | None = None
) -> TagInfo | None:
    """Digest, size, created time and labels of ``repo:tag``, or None when it is not there.

    *known*: digest -> details already read (a manifest never changes under its digest), so a
    repeated walk costs one HEAD per tag.
    """
    auth = resolve(registry, auth)
    if known:
        got = _request(
            registry, f"/v2/{repo}/manifests/{tag}", auth, method="HEAD", accept=MANIFEST_ACCEPT
        )
        if got is None:
            return None
        seen = known.get(got[1].get("Docker-Content-Digest", ""))
        if seen is not None:
            return TagInfo(repo, tag, seen.digest, seen.size, seen.created, seen.labels)
    got = _request(registry, f"/v2/{repo}/manifests/{tag}", auth, accept=MANIFEST_ACCEPT)
    if got is None:
        return None
    body, headers = got
    digest = headers.get("Docker-Content-Digest", "")
    manifest: dict[str, Any] = json.loads(body)
    media_type = manifest.get("mediaType") or headers.get("Content-Type", "")
    info = TagInfo(repo, tag, digest, None, media_type=media_type)
    if media_type in _INDEX_TYPES or "manifests" in manifest:
        return info  # a multi-platform index: sizes and labels belong to its children
    config = manifest.get("config") or {}
    layers = manifest.get("layers") or []
    info.size = int(config.get("size") or 0) + sum(int(x.get("size") or 0) for x in layers)
    if config.get("digest"):
        blob = _request(registry, f"/v2/{repo}/blobs/{config['digest']}", auth)
        if blob is not None:
            cfg = json.loads(blob[0])
            info.created = cfg.get("created") or ""
            info.labels = dict((cfg.get("config") or {}).get("Labels") or {})
    return info


def catalog(
    registry: str,
    wanted=lambda repo: True,
    *,
    auth=AUTO,
    known: dict[str, TagInfo] | None = None,
) -> list[TagInfo]:
    """Every tag of every repository *wanted* accepts, with its details."""
    auth = resolve(registry, auth)
    out = []
    for repo in repositories(registry, auth=auth):
        if not wanted(repo):
            continue
        for tag in tags(registry, repo, auth=auth):
            info = tag_info(registry, repo, tag, auth=auth, known=known)
            if info is not None:
                out.append(info)
    return out


def registry_digest(
    registry: str, repo: str, tag: str, timeout: float = 30.0, *, auth=AUTO
) -> str | None:
    """The manifest digest of ``repo:tag`` in *registry*, or None when it is not there."""
    got = _request(
        registry,
        f"/v2/{repo}/manifests/{tag}",
        resolve(registry, auth),
        method="HEAD",
        accept=MANIFEST_ACCEPT,
        timeout=timeout,
    )
    if got is None:
        return None
    digest = got[1].get("Docker-Content-Digest")
    if not digest:
        raise ImagesError(f"registry {registry} answered {repo}:{tag} without a digest header")
    return digest
