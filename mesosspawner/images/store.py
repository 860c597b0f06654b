"""The images service's own record of the images it built: who, which repository and tag, and
the digest it pushed.

"My images" offers only what is recorded here: a tag that appeared in someone's registry path by
other means (planted with another credential, pushed by hand, renamed) has no record, so it is
never offered, and the digest pinned is the one the service pushed, whatever the tag says now.

One JSON file, written by the service only (atomically: a new file renamed over the old one) and
read by the hub, which caches it until the file changes. ``parse_records`` is pure.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import ImagesError
from .userimages import HASH_LENGTH, image_repo

VERSION = 1
_TAG = re.compile(rf"[0-9a-f]{{{HASH_LENGTH}}}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_REGISTRY = re.compile(r"[A-Za-z0-9.-]+(?::[0-9]+)?")


@dataclass(frozen=True)
class Record:
    """One image the service built and pushed."""

    user: str  # the JupyterHub user name, exactly
    registry: str
    repo: str  # NAMESPACE/<escaped user>/<base>
    base: str  # the lab base's slug
    tag: str  # the content hash
    digest: str
    packages: str = ""
    created: str = ""  # ISO 8601, UTC

    @property
    def pinned(self) -> str:
        return f"{self.registry}/{self.repo}@{self.digest}"


def check_record(raw: object, namespace: str) -> Record | str:
    """A record, or why it is skipped (a reason for the log, naming the offending value)."""
    if not isinstance(raw, dict):
        return f"record {raw!r:.80} is not an object"
    try:
        record = Record(**{k: raw[k] for k in Record.__dataclass_fields__ if k in raw})
    except TypeError as exc:
        return f"record {raw!r:.120} lacks a field: {exc}"
    for name in Record.__dataclass_fields__:
        if not isinstance(getattr(record, name), str):
            return f"record {raw!r:.120}: {name} is not a string"
    if not _TAG.fullmatch(record.tag):
        return f"tag {record.tag!r} of {record.repo} is not a content hash"
    if not _DIGEST.fullmatch(record.digest):
        return f"digest {record.digest!r} of {record.repo}:{record.tag} is not sha256:<64 hex>"
    if not _REGISTRY.fullmatch(record.registry):
        return f"registry {record.registry!r} of {record.repo}:{record.tag} is not HOST[:PORT]"
    try:
        expected = image_repo(record.user, record.base, namespace)
    except ValueError as exc:
        return f"record of {record.user!r}: {exc}"
    if record.repo != expected:
        return f"repository {record.repo!r} is not {record.user!r}'s ({expected})"
    return record


def parse_records(
    text: str, namespace: str, source: str = "store"
) -> tuple[list[Record], list[str]]:
    """(records, reasons for each entry skipped) from a store file's text."""
    try:
        data = json.loads(text) if text.strip() else {"version": VERSION, "images": []}
    except ValueError as exc:
        raise ImagesError(f"{source} is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("images", []), list):
        raise ImagesError(f"{source} must hold an object with an 'images' list")
    records, skipped = [], []
    for raw in data.get("images", []):
        checked = check_record(raw, namespace)
        if isinstance(checked, Record):
            records.append(checked)
        else:
            skipped.append(checked)
    return records, skipped


def dump_records(records: Iterable[Record]) -> str:
    return json.dumps({"version": VERSION, "images": [asdict(r) for r in records]}, indent=1)


class ImageStore:
    """The store file: ``add`` (the service) and ``records`` (both), cached by the file's
    identity (inode, size, mtime) so a reader pays one ``stat`` when nothing changed."""

    def __init__(self, path: str | os.PathLike, namespace: str) -> None:
        self.path = Path(path)
        self.namespace = namespace
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._cached: list[Record] = []
        self.skipped: list[str] = []  # reasons of the last read, for the caller to log

    def records(self) -> list[Record]:
        """Every valid record (blocking: from async code, run it in a thread)."""
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._stamp, self._cached, self.skipped = None, [], []
                return []
            except OSError as exc:
                raise ImagesError(f"image store {self.path} cannot be read: {exc}") from None
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            if stamp != self._stamp:
                try:
                    text = self.path.read_text()
                except OSError as exc:
                    raise ImagesError(f"image store {self.path} cannot be read: {exc}") from None
                self._cached, self.skipped = parse_records(text, self.namespace, str(self.path))
                self._stamp = stamp
            return list(self._cached)

    def of(self, username: str) -> list[Record]:
        return [r for r in self.records() if r.user == username]

    def add(self, record: Record) -> None:
        """Record a pushed image (replacing an older record of the same repository and tag)."""
        checked = check_record(asdict(record), self.namespace)
        if not isinstance(checked, Record):
            raise ImagesError(f"refusing to record an image: {checked}")
        with self._lock:
            current = []
            if self.path.exists():
                current, _ = parse_records(self.path.read_text(), self.namespace, str(self.path))
            kept = [r for r in current if (r.repo, r.tag) != (record.repo, record.tag)]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".images-", suffix=".json")
            try:
                with os.fdopen(fd, "w") as fh:
                    fh.write(dump_records([*kept, record]))
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            self._stamp = None
