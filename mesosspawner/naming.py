"""Safe names for user-controlled strings: task ids, labels, host paths, shell words.

Pure. Two schemes, both injective (two different users can never share a name):

``safe_name`` (KubeSpawner 7's "safe" idea; what task ids, task names and labels use) leaves a
name made only of safe characters as it is: lowercase letters and digits, single ``-`` between
them (``alice``, ``exp-1``). Any other name is written ``x--`` plus its ``escape`` form
(``Alice`` becomes ``x---41lice``, ``a.b`` becomes ``x--a-2eb``). A safe name never contains
``--`` and every escaped one does, so the two kinds cannot collide; among escaped names
``escape`` is injective.

``escape`` (KubeSpawner's legacy ``escapism`` convention; task ids before the safe scheme, and
still the registry path of people's own images) writes every character outside ``a-z0-9`` as
``-`` plus the two hex digits of each UTF-8 byte (``-`` becomes ``-2d``, ``A`` becomes ``-41``,
``é`` becomes ``-c3-a9``). ``-`` always starts an escape, so ``unescape`` inverts it.

Both results hold only ``[a-z0-9-]``: safe in a Mesos task id, a label, a single path component
(never ``.``, ``..`` or containing ``/``), a Docker name and an unquoted shell word. Upper-case
letters are escaped, so both stay injective on case-insensitive file systems too.

Migration: tasks launched before the safe scheme keep their ids (the spawner's saved state holds
them); ``is_own_task`` accepts both schemes' prefixes, so orphan detection still finds them.
"""

from __future__ import annotations

import hashlib
import re

SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
ESCAPE_CHAR = "-"
# Mesos accepts longer ids, but task ids end up in sandbox paths and container names; 255 is
# the common file-name limit.
MAX_TASK_ID = 255
# Separates the fields of a task id. Neither scheme produces it, so the fields can be told
# apart and different (hub, user, server, nonce) tuples never produce the same id.
_FIELD_SEP = "."
# A safe name: lowercase letters and digits, single "-" between them (never "--").
_SAFE_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Starts every escaped safe_name; contains "--", which no safe name does.
ESCAPED_MARK = "x--"


def escape(s: str) -> str:
    """Escape ``s`` to ``[a-z0-9-]`` (see the module docstring); injective and deterministic."""
    if not isinstance(s, str):
        raise TypeError(f"escape() needs a str, not {type(s).__name__} {s!r:.40}")
    out: list[str] = []
    for ch in s:
        if ch in SAFE:
            out.append(ch)
        else:
            out.extend(f"{ESCAPE_CHAR}{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def safe_name(s: str) -> str:
    """``s`` unchanged when it is a safe name, else ``x--`` + ``escape(s)`` (module docstring).

    ``""`` stays ``""`` (the default server's name): no other input yields it.
    """
    if not isinstance(s, str):
        raise TypeError(f"safe_name() needs a str, not {type(s).__name__} {s!r:.40}")
    if s == "" or _SAFE_NAME.fullmatch(s):
        return s
    return ESCAPED_MARK + escape(s)


def unsafe_name(s: str) -> str:
    """Invert ``safe_name``; ``ValueError`` for text it cannot have produced."""
    if s.startswith(ESCAPED_MARK):
        name = unescape(s[len(ESCAPED_MARK) :])
        if name and not _SAFE_NAME.fullmatch(name):
            return name
    elif s == "" or _SAFE_NAME.fullmatch(s):
        return s
    raise ValueError(f"{s!r} is not a name safe_name() produces")


def unescape(s: str) -> str:
    """Invert ``escape``; raises ``ValueError`` for text ``escape`` cannot have produced."""
    raw = bytearray()
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == ESCAPE_CHAR:
            pair = s[i + 1 : i + 3]
            if len(pair) != 2 or any(c not in "0123456789abcdef" for c in pair):
                raise ValueError(f"{s!r}: bad escape at position {i}")
            raw.append(int(pair, 16))
            i += 3
        elif ch in SAFE:
            raw.extend(ch.encode())
            i += 1
        else:
            raise ValueError(f"{s!r}: {ch!r} is not a character escape() produces")
    return raw.decode("utf-8", "surrogatepass")


def task_id(hub_id: str, username: str, servername: str, nonce: str) -> str:
    """A Mesos task id ``jupyter.<hub>.<user>.<server>.<nonce>`` from ``safe_name`` parts.

    Fields are joined with ``.`` (which neither scheme emits) rather than ``-`` so the id is
    unambiguous. Ids longer than ``MAX_TASK_ID`` keep a readable prefix and end in a hash of
    the full id, so they stay unique and deterministic.
    """
    return _join_id([hub_id, username, servername, nonce], safe_name)


def legacy_task_id(hub_id: str, username: str, servername: str, nonce: str) -> str:
    """The id ``task_id`` gave before the safe scheme (every field ``escape``d)."""
    return _join_id([hub_id, username, servername, nonce], escape)


def _join_id(fields: list[str], scheme) -> str:
    full = _FIELD_SEP.join(["jupyter", *(scheme(f) for f in fields)])
    if len(full) <= MAX_TASK_ID:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:32]
    return full[: MAX_TASK_ID - len(digest) - 1] + _FIELD_SEP + digest


def task_id_prefixes(hub_id: str) -> tuple[str, ...]:
    """The prefixes this hub's task ids start with, under either scheme (one when they agree)."""
    safe = _FIELD_SEP.join(["jupyter", safe_name(hub_id), ""])
    legacy = _FIELD_SEP.join(["jupyter", escape(hub_id), ""])
    return (safe,) if safe == legacy else (safe, legacy)


def attempt_task_id(task_id: str, attempt: int) -> str:
    """The id of launch ``attempt`` (0 = the first) of a task: the first keeps ``task_id``, a
    relaunch appends ``.<attempt>``. Mesos strongly discourages reusing a task id (an agent
    may still hold the failed attempt's executor under it: MESOS-2198)."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ValueError(f"attempt must be a whole number >= 0, not {attempt!r}")
    if attempt == 0:
        return task_id
    full = f"{task_id}{_FIELD_SEP}{attempt}"
    if len(full) <= MAX_TASK_ID:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:32]
    return full[: MAX_TASK_ID - len(digest) - 1] + _FIELD_SEP + digest


def task_id_prefix(hub_id: str) -> str:
    """The prefix this hub's new task ids start with (``task_id_prefixes`` for matching)."""
    return task_id_prefixes(hub_id)[0]


def is_own_task(task_id: str, hub_id: str) -> bool:
    """Whether ``task_id`` was made by this hub, under the safe or the legacy scheme: finds a
    crashed hub's orphans, including those launched before the safe scheme."""
    return task_id.startswith(task_id_prefixes(hub_id))


_ORDINARY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}")
_PATH_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def path_component(s: str) -> str:
    """``s`` as one safe path component, unchanged when it already is one.

    Lab storage is named after the real user (``/srv/home/mss-alice``), so ordinary names
    (``[A-Za-z0-9_][A-Za-z0-9._-]*``) pass through. Anything else is percent-encoded byte by
    byte except ``[A-Za-z0-9_]``; an encoded name always contains ``%``, which a passed-through
    name never does, so the mapping stays injective and can never yield ``.``, ``..`` or ``/``.
    """
    if not isinstance(s, str):
        raise TypeError(f"path_component() needs a str, not {type(s).__name__} {s!r:.40}")
    if _ORDINARY_NAME.fullmatch(s) and s not in (".", ".."):
        return s
    return "".join(
        ch
        if ch in _PATH_SAFE
        else "".join(f"%{b:02x}" for b in ch.encode("utf-8", "surrogatepass"))
        for ch in s
    )
