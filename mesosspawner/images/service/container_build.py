"""One build in the Docker engine (blocking: the builder runs it in a thread).

Not ``docker build``: the classic builder's API has no pids limit and reports a build killed for
memory only as an exit code. Instead, the way a Dockerfile's RUN runs, but with every limit:

1. a build container from the base (pinned by digest; pulled with the service's registry login)
   runs the request's script as root, with memory (no swap), CPU and pids limits, killed at the
   wall-clock deadline; the engine says whether it was killed for memory;
2. the last step, from outside that container: its filesystem is read through the engine's
   export, and every file with a setuid/setgid bit or file capabilities is put back without
   them (the engine replaces the file), then read again to check. Nothing the packages
   installed runs during this step, so they cannot subvert it;
3. the container is committed with the base's command and the request's ENV and labels,
   pushed with the service's login, and the local image and container are removed.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..errors import ImagesError
from ..registry import Credentials
from ..userimages import privileged
from .limits import Limits

Emit = Callable[[str], None]
CONTAINER_PREFIX = "mesosspawner-build-"
_XATTR_PREFIX = "SCHILY.xattr."


class _ChunkReader(io.RawIOBase):
    """A file over an iterator of byte chunks (the engine's export stream)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def scan_export(chunks: Iterable[bytes], out: tarfile.TarFile | None = None) -> list[str]:
    """Every privileged file of an exported filesystem (``privileged``'s reasons); with *out*,
    each is also written there without its setuid/setgid bits and capabilities."""
    found = []
    stream = io.BufferedReader(_ChunkReader(chunks), 1 << 20)
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            xattrs = [
                k[len(_XATTR_PREFIX) :] for k in member.pax_headers if k.startswith(_XATTR_PREFIX)
            ]
            why = privileged(member.name, member.mode, xattrs, member.isreg() or member.islnk())
            if why is None:
                continue
            found.append(why)
            if out is not None:
                clean = tarfile.TarInfo(member.name)
                clean.type = member.type
                clean.mode = member.mode & 0o1777
                clean.uid, clean.gid = member.uid, member.gid
                clean.uname, clean.gname = member.uname, member.gname
                clean.mtime = member.mtime
                clean.linkname = member.linkname
                if member.isreg():
                    clean.size = member.size
                    out.addfile(clean, tar.extractfile(member))
                else:
                    out.addfile(clean)
    return found


def _ensure_base(client, base_ref: str, auth: Credentials | None, emit: Emit) -> Any:
    """The base in the engine, pulled when missing (*auth*: the login for its registry)."""
    import docker

    try:
        return client.images.get(base_ref)
    except docker.errors.ImageNotFound:
        pass
    repo, _, digest = base_ref.partition("@")
    emit(f"pulling {base_ref}")
    for item in client.api.pull(
        repo,
        tag=digest,
        stream=True,
        decode=True,
        auth_config=auth.auth_config() if auth else None,
    ):
        if "error" in item:
            raise ImagesError(f"pulling the base {base_ref} failed: {item['error']}")
    return client.images.get(base_ref)


def _commit_config(base_config: dict, env: dict[str, str], labels: dict[str, str]) -> dict:
    """The image's config: the base's command, user and ports, the request's ENV and labels.
    (The engine fills fields left empty from the build container: never its build command.)"""
    keep = ("User", "WorkingDir", "ExposedPorts", "Volumes", "StopSignal", "Healthcheck")
    conf = {k: base_config[k] for k in keep if base_config.get(k)}
    conf["Entrypoint"] = base_config.get("Entrypoint") or None
    conf["Cmd"] = base_config.get("Cmd") or (None if conf["Entrypoint"] else ["/bin/sh"])
    conf["User"] = base_config.get("User") or "0"
    base_env = [e for e in base_config.get("Env") or [] if e.split("=", 1)[0] not in env]
    conf["Env"] = base_env + [f"{k}={v}" for k, v in env.items()]
    conf["Labels"] = {**(base_config.get("Labels") or {}), **labels}
    return conf


class ContainerBuild:
    """The engine steps of one build; ``run`` returns the pushed digest or raises ImagesError
    with a message for the person."""

    def __init__(
        self,
        client,
        *,
        build_id: str,
        base_ref: str,
        script: str,
        env: dict[str, str],
        labels: dict[str, str],
        ref: str,
        limits: Limits,
        auth: Credentials | None,
        emit: Emit,
        status: Callable[[str], None],
        follow: Callable[[Any, str, float], dict],
    ) -> None:
        self.client = client
        self.name = CONTAINER_PREFIX + build_id
        self.base_ref, self.script, self.env, self.labels = base_ref, script, env, labels
        self.ref, self.limits, self.auth = ref, limits, auth
        self.emit, self.status, self.follow = emit, status, follow
        self.timed_out = False
        self.committed = False

    def run(self, deadline: float) -> str:
        container = None
        try:
            # The service's login goes to the service's registry only, never to a base's other one.
            same = self.base_ref.split("/", 1)[0] == self.ref.split("/", 1)[0]
            base = _ensure_base(self.client, self.base_ref, self.auth if same else None, self.emit)
            container = self._create()
            self._run_script(container, deadline)
            self._strip(container)
            self._commit(container, base.attrs.get("Config") or {})
            return self._push(deadline)
        finally:
            if container is not None:
                try:
                    container.remove(force=True)
                except Exception:  # noqa: BLE001 - the engine may be gone: nothing more to do
                    pass
            if self.committed:
                try:
                    self.client.images.remove(self.ref)  # pushed (or failed): not kept here
                    self.emit(f"removed {self.ref} from the build engine")
                except Exception as exc:  # noqa: BLE001
                    self.emit(f"could not remove {self.ref} from the build engine: {exc}")

    def _create(self):
        limits = self.limits
        self.emit(
            f"build container: {limits.memory / 2**20:.0f} MiB memory, {limits.cpus:g} CPUs, "
            f"{limits.pids} processes, {limits.build_timeout:g} s"
        )
        return self.client.containers.create(
            self.base_ref,
            entrypoint=["/bin/sh", "-c"],
            command=[self.script],
            user="0",
            name=self.name,
            mem_limit=limits.memory,
            memswap_limit=limits.memory,
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
        )

    def _run_script(self, container, deadline: float) -> None:
        limits = self.limits

        def stop() -> None:
            self.timed_out = True
            try:
                container.kill()
            except Exception:  # noqa: BLE001 - it ended meanwhile
                pass

        timer = threading.Timer(max(0.0, deadline - time.monotonic()), stop)
        timer.daemon = True
        container.start()
        timer.start()
        try:
            pending = b""
            for chunk in container.logs(stream=True, follow=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.emit(line.decode(errors="replace").rstrip("\r"))
            if pending:
                self.emit(pending.decode(errors="replace"))
            code = int(container.wait().get("StatusCode", -1))
        finally:
            timer.cancel()
        container.reload()
        state = container.attrs.get("State") or {}
        if self.timed_out:
            raise ImagesError(
                f"the build took longer than this hub's limit of {limits.build_timeout:g} seconds "
                "and was stopped; install fewer packages"
            )
        if state.get("OOMKilled"):
            raise ImagesError(
                f"the build ran out of memory: it needs more than this hub's limit of "
                f"{limits.memory / 2**20:.0f} MiB and was stopped; install fewer or smaller "
                "packages, or ask an administrator"
            )
        if code != 0:
            hint = " (killed: out of memory or processes?)" if code == 137 else ""
            raise ImagesError(
                f"the build's commands failed with exit code {code}{hint}; the log says why"
            )

    def _strip(self, container) -> None:
        """The last step: no setuid/setgid bits or file capabilities left in the image."""
        with tempfile.SpooledTemporaryFile(max_size=64 * 2**20) as spool:
            with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as out:
                found = scan_export(container.export(), out)
            if not found:
                self.emit("last step: no setuid/setgid files or file capabilities to strip")
                return
            self.emit(f"last step: stripping {len(found)} files of their privileges:")
            for why in found:
                self.emit(f"  {why}")
            spool.seek(0)
            if not container.put_archive("/", spool):
                raise ImagesError("the engine refused the stripped files; nothing was pushed")
        left = scan_export(container.export())
        if left:
            raise ImagesError(
                "privileged files remain after the strip step, nothing was pushed: "
                + "; ".join(left[:5])
            )

    def _commit(self, container, base_config: dict) -> None:
        repo, _, tag = self.ref.rpartition(":")
        conf = _commit_config(base_config, self.env, self.labels)
        image = container.commit(repository=repo, tag=tag, conf=conf)
        self.committed = True
        size = int(image.attrs.get("Size") or 0)
        self.emit(f"image size {size / 2**20:.1f} MiB")
        if size > self.limits.max_image_size:
            raise ImagesError(
                f"the image is {size / 2**20:.0f} MiB, over this hub's limit of "
                f"{self.limits.max_image_size / 2**20:.0f} MiB; remove packages and try again"
            )

    def _push(self, deadline: float) -> str:
        self.status("pushing")
        repo, _, tag = self.ref.rpartition(":")
        self.emit(f"pushing {self.ref}")
        stream = self.client.api.push(
            repo,
            tag=tag,
            stream=True,
            decode=True,
            auth_config=self.auth.auth_config() if self.auth else None,
        )
        aux = self.follow(stream, "push", deadline)
        return aux.get("Digest") or ""
