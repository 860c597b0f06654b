"""Read a Docker registry (HTTP API v2): repositories, tags, digests, sizes, labels.

Blocking (urllib): callers on an event loop run it in a thread. Loopback registries are spoken to
over plain HTTP, as the Docker engine does; others over HTTPS. Anonymous reads only, like
``mesosspawner-images``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
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


def _get(registry: str, path: str, accept: str | None = None, timeout: float = 30.0):
    url = base_url(registry) + path
    headers = {"Accept": accept} if accept else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise ImagesError(f"registry {registry} answered {exc.code} for {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ImagesError(
            f"cannot reach registry {registry} ({url}): {getattr(exc, 'reason', exc)}"
        ) from None
    with resp:
        return resp.read(), dict(resp.headers)


def repositories(registry: str, page: int = 1000) -> list[str]:
    """Every repository in the registry's catalog (following pagination)."""
    out: list[str] = []
    path = f"/v2/_catalog?n={page}"
    while path:
        got = _get(registry, path)
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


def tags(registry: str, repo: str) -> list[str]:
    got = _get(registry, f"/v2/{repo}/tags/list")
    if got is None:
        return []
    return sorted(json.loads(got[0]).get("tags") or [])


def tag_info(registry: str, repo: str, tag: str) -> TagInfo | None:
    """Digest, size, created time and labels of ``repo:tag``, or None when it is not there."""
    got = _get(registry, f"/v2/{repo}/manifests/{tag}", accept=MANIFEST_ACCEPT)
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
        blob = _get(registry, f"/v2/{repo}/blobs/{config['digest']}")
        if blob is not None:
            cfg = json.loads(blob[0])
            info.created = cfg.get("created") or ""
            info.labels = dict((cfg.get("config") or {}).get("Labels") or {})
    return info


def catalog(registry: str, wanted=lambda repo: True) -> list[TagInfo]:
    """Every tag of every repository *wanted* accepts, with its details."""
    out = []
    for repo in repositories(registry):
        if not wanted(repo):
            continue
        for tag in tags(registry, repo):
            info = tag_info(registry, repo, tag)
            if info is not None:
                out.append(info)
    return out


def registry_digest(registry: str, repo: str, tag: str, timeout: float = 30.0) -> str | None:
    """The manifest digest of ``repo:tag`` in *registry* (Docker Registry HTTP API v2), or None.

    Loopback registries are spoken to over plain HTTP, as the Docker engine does; others over HTTPS.
    """
    host = registry.split(":")[0]
    scheme = "http" if host in ("localhost", "127.0.0.1", "::1") else "https"
    url = f"{scheme}://{registry}/v2/{repo}/manifests/{tag}"
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": MANIFEST_ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            digest = resp.headers.get("Docker-Content-Digest")
            if not digest:
                raise ImagesError(f"registry {registry} answered {url} without a digest header")
            return digest
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        if exc.code == 401:
            raise ImagesError(
                f"registry {registry} requires authentication for {repo}; "
                "this command supports registries that allow anonymous reads"
            ) from None
        raise ImagesError(f"registry {registry} answered {exc.code} for {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ImagesError(
            f"cannot reach registry {registry} ({url}): {reason}; "
            "--registry takes HOST:PORT of a running Docker registry"
        ) from None
