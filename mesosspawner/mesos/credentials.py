"""The framework's credentials: a principal and its secret, the secret best read from a file.

Mesos authenticates HTTP frameworks and operator reads with HTTP basic authentication
(``--http_framework_authenticators=basic``). The secret travels in an ``Authorization`` header
only: it is never logged, never in a repr, never in a TaskInfo. A file (``secret_file``, mode
0600) keeps it out of ``jupyterhub_config.py``, which is often readable, versioned or shared.
"""

from __future__ import annotations

import os
import stat


class CredentialError(ValueError):
    """Credentials that cannot be used, said without the secret."""


def read_secret_file(path: str) -> str:
    """The secret held in ``path``: its content without trailing line breaks."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise CredentialError(
            f"secret_file {path!r} cannot be read ({e.strerror or e}); it must hold the secret "
            "of `principal` and be readable by the hub's user (mode 0600)"
        ) from None
    except UnicodeDecodeError:
        raise CredentialError(f"secret_file {path!r} is not UTF-8 text") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise CredentialError(f"secret_file {path!r} is empty; put the secret of `principal` in it")
    return secret


def readable_by_others(path: str) -> bool:
    """Whether users other than the owner (and its group) may read ``path``."""
    try:
        return bool(os.stat(path).st_mode & stat.S_IROTH)
    except OSError:
        return False


def resolve(
    principal: str | None, secret: str | None, secret_file: str | None
) -> tuple[str | None, str | None]:
    """(principal, secret) from the traits, the secret read from ``secret_file`` if set."""
    if secret is not None and secret_file:
        raise CredentialError(
            "both `secret` and `secret_file` are set; keep only `secret_file` (the file keeps "
            "the secret out of the config)"
        )
    if secret_file:
        if not principal:
            raise CredentialError(
                f"`secret_file` ({secret_file!r}) is set but `principal` is not: set the "
                "principal the secret belongs to"
            )
        secret = read_secret_file(secret_file)
    if secret is not None and not principal:
        raise CredentialError("`secret` is set but `principal` is not")
    if secret is not None and any(c in secret for c in "\r\n\0"):
        # It goes into an HTTP header: a line break there would end the header.
        raise CredentialError("the secret contains a line break or NUL; Mesos secrets cannot")
    if principal and any(c in principal for c in ":\r\n\0"):
        raise CredentialError(
            f"principal {principal!r} contains ':' or a line break; HTTP basic authentication "
            "cannot carry it"
        )
    return principal, secret
