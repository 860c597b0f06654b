"""A hostile lab base for the images service's security tests: the lab's notebook image plus a
local package index whose packages attack the build as root (their setup.py runs then), in a
registry that needs a login.

- ``plantshell`` plants ``/usr/local/bin/rootsh`` (bash, setuid root) and ``rootpy`` (python
  with the ``cap_setuid`` file capability): either gives euid 0 to whoever runs it, unless the
  build strips them;
- ``memhog`` holds 1 GiB while it builds: a build over its memory limit.
"""

from __future__ import annotations

import io
import tarfile
import time

from mesosspawner.images.lab import split_ref
from mesosspawner.images.registry import registry_digest

PACKAGES_DIR = "/opt/hostile-packages"
# VFS_CAP_REVISION_2 | effective; permitted = CAP_SETUID (7) and CAP_SETGID (6).
_CAP_SETUID = "struct.pack('<IIIII', 0x02000001, 0xC0, 0, 0, 0)"

SETUP = {
    "plantshell": f"""
import os, shutil, struct
from setuptools import setup
shutil.copy("/bin/bash", "/usr/local/bin/rootsh")
os.chown("/usr/local/bin/rootsh", 0, 0)
os.chmod("/usr/local/bin/rootsh", 0o6755)
shutil.copy(os.path.realpath("/usr/bin/python3"), "/usr/local/bin/rootpy")
os.chmod("/usr/local/bin/rootpy", 0o755)
os.setxattr("/usr/local/bin/rootpy", "security.capability", {_CAP_SETUID})
setup(name="plantshell", version="1.0", py_modules=[])
""",
    "memhog": """
from setuptools import setup
hog = b"x" * (1024 * 2**20)
setup(name="memhog", version="1.0", py_modules=[])
""",
}


def _sdist(name: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        files = {
            "setup.py": SETUP[name],
            "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        }
        for fname, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{name}-1.0/{fname}")
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_context() -> io.BytesIO:
    """Dockerfile (FROM ${NOTEBOOK}) and the package index, as a build context tar."""
    dockerfile = f"""ARG NOTEBOOK
FROM ${{NOTEBOOK}}
COPY packages/ {PACKAGES_DIR}/
ENV PIP_NO_INDEX=1 PIP_FIND_LINKS={PACKAGES_DIR} PIP_NO_BUILD_ISOLATION=false
"""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        entries = {"Dockerfile": dockerfile.encode()}
        entries.update({f"packages/{n}-1.0.tar.gz": _sdist(n) for n in SETUP})
        for fname, data in entries.items():
            info = tarfile.TarInfo(fname)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def push_hostile_base(client, notebook_image: str, registry, who: str = "ci") -> str:
    """Build the hostile base on *notebook_image* and push it to *registry* (an authenticated
    ``Registry``) with *who*'s login; returns it pinned by digest."""
    ref = f"{registry.address}/mesosspawner/hostile-notebook:1"
    for item in client.api.build(
        fileobj=build_context(),
        custom_context=True,
        tag=ref,
        buildargs={"NOTEBOOK": notebook_image},
        rm=True,
        decode=True,
    ):
        assert "error" not in item, item
    login = registry.logins[who]
    repo, tag = split_ref(ref)
    for item in client.api.push(
        repo, tag=tag, stream=True, decode=True, auth_config=login.auth_config()
    ):
        assert "error" not in item, item
    digest = registry_digest(registry.address, repo.split("/", 1)[1], tag, auth=login)
    assert digest
    return f"{repo}@{digest}"
