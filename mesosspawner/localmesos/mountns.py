"""Run a command task with host-path volumes, as Mesos's ``filesystem/linux`` isolator does.

``python mountns.py SPEC_JSON -- ARGV...``: enter a private mount namespace (mounts made here
never reach the host's), bind-mount each volume (``{"host": ..., "target": ..., "ro": bool}``,
read-only ones remounted so), drop to the task's user (``uid``, ``gid``, ``groups``) and exec
ARGV. The agent runs it as root, as the real agent's linux launcher is; a mount that fails
ends it with status 1 and a line on stderr (the sandbox's ``stderr``) saying which and why.

Standard library only, run by path: the task's environment carries none of the agent's, so the
package need not be importable from it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import sys

CLONE_NEWNS = 0x00020000
MS_RDONLY = 0x1
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_SLAVE = 0x80000


def _fail(message: str) -> None:
    sys.stderr.write(f"Failed to prepare mounts: {message}\n")
    sys.stderr.flush()
    os._exit(1)


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[2] != "--":
        _fail(f"usage: {argv[0]} SPEC_JSON -- ARGV...")
    spec = json.loads(argv[1])
    command = argv[3:]
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

    def call(result: int, what: str) -> None:
        if result != 0:
            _fail(f"{what}: {os.strerror(ctypes.get_errno())}")

    call(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    # Mounts of the host still propagate in; ours never propagate out.
    call(libc.mount(None, b"/", None, MS_REC | MS_SLAVE, None), "making / a slave mount")
    for m in spec.get("mounts", []):
        host, target = m["host"], m["target"]
        if not os.path.exists(host):
            _fail(f"host path '{host}' of a volume does not exist")
        try:
            os.makedirs(target, exist_ok=True)
        except OSError as e:
            _fail(f"Failed to create mount target '{target}': {e.strerror}")
        call(
            libc.mount(host.encode(), target.encode(), None, MS_BIND | MS_REC, None),
            f"Failed to mount '{host}' to '{target}'",
        )
        if m.get("ro"):
            flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC
            call(libc.mount(None, target.encode(), None, flags, None), f"read-only '{target}'")
    if spec.get("uid") is not None:
        os.setgroups(spec.get("groups") or [])
        os.setgid(spec["gid"])
        os.setuid(spec["uid"])
    try:
        os.execvp(command[0], command)
    except OSError as e:
        sys.stderr.write(f"Failed to execute '{command[0]}': {e.strerror}\n")
        os._exit(127)


if __name__ == "__main__":
    main(sys.argv)
