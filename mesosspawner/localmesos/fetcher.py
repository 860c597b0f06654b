"""The Mesos fetcher's job for localmesos: put a task's ``command.uris`` into its sandbox.

As ``mesos-fetcher`` does before the executor starts: http(s) URIs are downloaded, absolute
paths and ``file://`` URIs copied, each to ``output_file`` or the URI's base name, made
executable when asked, and owned by the task's user. Archives are not extracted (a documented
localmesos difference). Any failure fails the launch with the message the real agent uses.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import urllib.parse

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

FETCH_TIMEOUT_SECONDS = 60.0


class FetchError(Exception):
    """A URI could not be fetched; the message names it and why."""


def target_name(uri: dict) -> str:
    """The file name in the sandbox: ``output_file``, else the URI's last path component."""
    name = uri.get("output_file") or posixpath.basename(
        urllib.parse.urlparse(str(uri.get("value", ""))).path
    )
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise FetchError(f"cannot name a sandbox file for URI {_safe(uri)!r}")
    return name


def _safe(uri: dict) -> str:
    """The URI without its path, which may be a one-time credential."""
    parsed = urllib.parse.urlparse(str(uri.get("value", "")))
    return f"{parsed.scheme}://{parsed.netloc}/..." if parsed.netloc else "<local path>"


async def fetch_uris(uris: list[dict], sandbox: str, uid: int | None, gid: int | None) -> None:
    for uri in uris:
        if not isinstance(uri, dict) or not uri.get("value"):
            raise FetchError("a command URI without a value")
        path = os.path.join(sandbox, target_name(uri))
        value = str(uri["value"])
        scheme = urllib.parse.urlparse(value).scheme
        try:
            if scheme in ("http", "https"):
                response = await AsyncHTTPClient().fetch(
                    value, request_timeout=FETCH_TIMEOUT_SECONDS, follow_redirects=True
                )
                with open(path, "wb") as fh:
                    fh.write(response.body)
            elif scheme == "file" or os.path.isabs(value):
                source = urllib.parse.urlparse(value).path if scheme == "file" else value
                shutil.copyfile(source, path)
            else:
                raise FetchError(f"unsupported URI scheme {scheme!r}")
            os.chmod(path, 0o755 if uri.get("executable") else 0o644)
            if uid is not None and os.geteuid() == 0:
                os.chown(path, uid, -1 if gid is None else gid)
        except (HTTPClientError, OSError) as e:
            raise FetchError(f"Failed to fetch {_safe(uri)}: {e}") from None
