"""Large build inputs, fetched once into a cache and checked against a pinned sha256.

An image may declare downloads in ``docker/images.toml`` (the PySpark sdist is 318 MB): each is a
file from the Python package index (``pip download``, so pip's configured index, proxy and CA
apply), kept in ``$XDG_CACHE_HOME/mesosspawner/downloads`` (default ``~/.cache``), and put into the
image's build context under ``downloads/``. A cached file whose sha256 matches is never fetched
again; one that does not match is refused, never built into an image.

    mesosspawner-images download pyspark-3.5.9.tar.gz   # fetch (if needed), print the path
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


class DownloadError(Exception):
    """A download that cannot be had or does not match its pinned hash; the message says why."""


@dataclass(frozen=True)
class Download:
    """One pinned file: its name, the pip requirement that yields it, and its sha256."""

    file: str
    pip: str
    sha256: str

    def __post_init__(self) -> None:
        if not self.file or "/" in self.file or self.file.startswith("."):
            raise DownloadError(f"download file {self.file!r} must be a plain file name")
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise DownloadError(
                f"download {self.file}: sha256 {self.sha256!r} is not 64 hex digits"
            )


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mesosspawner" / "downloads"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(download: Download, cache: Path | None = None) -> Path:
    """The cached file, downloaded with ``pip download`` first when it is missing."""
    cache = cache or cache_dir()
    target = cache / download.file
    if target.exists():
        have = file_sha256(target)
        if have == download.sha256:
            return target
        raise DownloadError(
            f"{target} has sha256 {have}, not the pinned {download.sha256}: delete it to fetch"
            " it again, or fix the pin in docker/images.toml"
        )
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        # An sdist is wanted as it is: no dependencies, no wheel in its place.
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        argv += ["--dest", tmp, download.pip]
        result = subprocess.run(argv, capture_output=True, text=True)
        got = Path(tmp) / download.file
        if result.returncode != 0 or not got.exists():
            tail = (result.stdout + result.stderr)[-1500:]
            raise DownloadError(
                f"pip download {download.pip} did not give {download.file}:\n{tail}"
            )
        have = file_sha256(got)
        if have != download.sha256:
            raise DownloadError(
                f"pip download {download.pip}: {download.file} has sha256 {have}, not the pinned"
                f" {download.sha256}"
            )
        got.replace(target)
    return target
