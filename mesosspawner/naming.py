"""Safe names for user-controlled strings: task ids, labels, host paths, shell words.

Pure. The escaping follows KubeSpawner's ``escapism`` convention so admins recognise it:

* the safe characters are ``a-z`` and ``0-9``;
* every other character is UTF-8 encoded and each byte written as ``-`` plus two lowercase
  hex digits (``-`` itself becomes ``-2d``, ``A`` becomes ``-41``, ``é`` becomes ``-c3-a9``).

So the result holds only ``[a-z0-9-]``: safe in a Mesos task id, a label, a single path
component (it can never be ``.``, ``..`` or contain ``/``), a Docker name and an unquoted shell
word. Because ``-`` is always the start of an escape, the mapping is injective (``unescape``
inverts it) and two different users can never share a name; because upper-case letters are
escaped too, it also stays injective on case-insensitive file systems and after lower-casing.
"""

from __future__ import annotations

import hashlib
import re

SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
ESCAPE_CHAR = "-"
# Mesos accepts longer ids, but task ids end up in sandbox paths and container names; 255 is
# the common file-name limit.
MAX_TASK_ID = 255
# Separates the fields of a task id. ``escape`` never produces it, so the fields can be told
# apart and different (hub, user, server, nonce) tuples never produce the same id.
_FIELD_SEP = "."


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
    """A Mesos task id ``jupyter.<hub>.<user>.<server>.<nonce>`` from escaped parts.

    Fields are joined with ``.`` (which ``escape`` never emits) rather than ``-`` so the id
    is unambiguous. Ids longer than ``MAX_TASK_ID`` keep a readable prefix and end in a hash
    of the full id, so they stay unique and deterministic.
    """
    full = _FIELD_SEP.join(
        ["jupyter", escape(hub_id), escape(username), escape(servername), escape(nonce)]
    )
    if len(full) <= MAX_TASK_ID:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:32]
    return full[: MAX_TASK_ID - len(digest) - 1] + _FIELD_SEP + digest


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
    """The prefix every task id of this hub starts with (finds a crashed hub's orphans)."""
    return _FIELD_SEP.join(["jupyter", escape(hub_id), ""])


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
