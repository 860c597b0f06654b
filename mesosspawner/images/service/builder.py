"""Build and push people's images: one build at a time per person, in a thread, with limits.

The engine calls (docker SDK, blocking) run in a thread executor; log lines cross back to the
event loop with ``call_soon_threadsafe``, where readers of a build's log wait for them. An
identical request whose content-hash tag is already in the registry is reused without a build.
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
import tarfile
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import lab, registry
from ..errors import ImagesError
from ..userimages import BuildRequest, image_repo, labels, render_dockerfile

log = logging.getLogger(__name__)

QUEUED, BUILDING, PUSHING, DONE, REUSED, FAILED = (
    "queued",
    "building",
    "pushing",
    "done",
    "reused",
    "failed",
)
FINISHED = (DONE, REUSED, FAILED)


@dataclass
class Limits:
    """What an admin bounds (``mesosspawner-images serve --help``)."""

    build_timeout: float = 900.0  # seconds for build + push
    max_image_size: int = 8 * 2**30  # bytes, the built image as the engine reports it
    max_queued_per_user: int = 3  # builds waiting or running per person
    max_concurrent: int = 1  # builds running at once on the engine
    max_packages: int = 20
    allow_apt: bool = True


@dataclass
class Build:
    id: str
    username: str
    request: BuildRequest
    registry: str
    repo: str  # NAMESPACE/USER/BASE in the registry
    dockerfile: str
    status: str = QUEUED
    lines: list[str] = field(default_factory=list)
    digest: str | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def tag(self) -> str:
        return self.request.content_hash

    @property
    def ref(self) -> str:
        return f"{self.registry}/{self.repo}:{self.tag}"

    @property
    def pinned(self) -> str | None:
        return f"{self.registry}/{self.repo}@{self.digest}" if self.digest else None

    @property
    def seconds(self) -> float | None:
        if self.started is None:
            return None
        return (self.finished or time.time()) - self.started

    def add(self, line: str) -> None:
        self.lines.append(line)
        self._notify()

    def set_status(self, status: str, error: str | None = None) -> None:
        self.status = status
        if error:
            self.error = error
        if status in FINISHED:
            self.finished = time.time()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, timeout: float) -> None:
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass

    def model(self, with_log: bool = False) -> dict[str, Any]:
        out = {
            "id": self.id,
            "user": self.username,
            "status": self.status,
            "base": self.request.base,
            "apt": list(self.request.apt),
            "pip": list(self.request.pip),
            "ref": self.ref,
            "tag": self.tag,
            "digest": self.digest,
            "pinned": self.pinned,
            "error": self.error,
            "seconds": round(self.seconds, 1) if self.seconds is not None else None,
            "dockerfile": self.dockerfile,
        }
        if with_log:
            out["log"] = list(self.lines)
        return out


class BuildRefused(Exception):
    """A build that cannot be queued (limits); the message is for the person (HTTP 429)."""


class Builder:
    """Queues, runs and remembers builds. One per service process."""

    def __init__(
        self,
        registry: str,
        namespace: str,
        limits: Limits,
        connect: Callable[[float], Any],
        keep: int = 200,
    ) -> None:
        self.registry = registry
        self.namespace = namespace
        self.limits = limits
        self._connect = connect  # timeout -> docker client
        self._builds: OrderedDict[str, Build] = OrderedDict()
        self._keep = keep
        self._user_locks: dict[str, asyncio.Lock] = {}
        self._engine_slots = asyncio.Semaphore(max(1, limits.max_concurrent))

    def get(self, build_id: str) -> Build | None:
        return self._builds.get(build_id)

    def builds_of(self, username: str | None) -> list[Build]:
        """Newest first; every person's when username is None."""
        return [
            b for b in reversed(self._builds.values()) if username is None or b.username == username
        ]

    def submit(self, req: BuildRequest) -> Build:
        """Queue *req* (or return the same request already queued or running)."""
        repo = image_repo(req.username, req.base, self.namespace)
        for b in self.builds_of(req.username):
            if b.status not in FINISHED and b.tag == req.content_hash and b.repo == repo:
                return b
        active = [b for b in self.builds_of(req.username) if b.status not in FINISHED]
        if len(active) >= self.limits.max_queued_per_user:
            raise BuildRefused(
                f"you have {len(active)} builds queued or running; the limit is "
                f"{self.limits.max_queued_per_user}: wait for one to finish"
            )
        dockerfile = render_dockerfile(req)
        build = Build(secrets.token_hex(6), req.username, req, self.registry, repo, dockerfile)
        self._builds[build.id] = build
        while len(self._builds) > self._keep:
            oldest = next(iter(self._builds.values()))
            if oldest.status not in FINISHED:
                break
            self._builds.popitem(last=False)
        asyncio.get_running_loop().create_task(self._run(build))
        return build

    async def _run(self, build: Build) -> None:
        lock = self._user_locks.setdefault(build.username, asyncio.Lock())
        try:
            digest = await asyncio.to_thread(
                registry.registry_digest, self.registry, build.repo, build.tag
            )
            if digest:
                build.digest = digest
                build.add(f"{build.ref} is already in the registry: reusing it, nothing built")
                build.started = build.created
                build.set_status(REUSED)
                return
            async with lock:  # one build at a time per person, in order
                build.add("waiting for the build engine")
                async with self._engine_slots:
                    build.started = time.time()
                    build.set_status(BUILDING)
                    loop = asyncio.get_running_loop()

                    def emit(line: str) -> None:
                        loop.call_soon_threadsafe(build.add, line)

                    def status(value: str) -> None:
                        loop.call_soon_threadsafe(build.set_status, value)

                    build.digest = await asyncio.to_thread(
                        self._build_and_push, build, emit, status
                    )
                    build.add(f"pushed {build.pinned}")
                    build.set_status(DONE)
        except ImagesError as exc:
            build.add(f"ERROR: {exc}")
            build.set_status(FAILED, str(exc).splitlines()[0])
        except Exception as exc:  # noqa: BLE001 - shown to the person, logged for the admin
            log.exception("build %s of %s failed", build.id, build.username)
            build.add(f"ERROR: {type(exc).__name__}: {exc}")
            build.set_status(FAILED, f"{type(exc).__name__}: {exc}")
        finally:
            log.info(
                "build %s of %s for %s: %s in %.1fs",
                build.id,
                build.ref,
                build.username,
                build.status,
                build.seconds or 0.0,
            )

    # ------------------------------------------------------------------ in the thread

    def _build_and_push(self, build: Build, emit, status) -> str:
        limits = self.limits
        deadline = time.monotonic() + limits.build_timeout
        client = self._connect(limits.build_timeout)
        try:
            emit(f"building {build.ref} from {build.request.base_ref}")
            for line in build.dockerfile.splitlines():
                emit(f"| {line}")
            stream = client.api.build(
                fileobj=_dockerfile_tar(build.dockerfile),
                custom_context=True,
                tag=build.ref,
                labels=labels(build.request, build.dockerfile),
                rm=True,
                forcerm=True,
                pull=False,
                decode=True,
            )
            self._follow(stream, "build", deadline, emit)
            image = client.images.get(build.ref)
            size = int(image.attrs.get("Size") or 0)
            emit(f"image size {size / 2**20:.1f} MiB")
            if size > limits.max_image_size:
                client.images.remove(build.ref, force=True)
                raise ImagesError(
                    f"the image is {size / 2**20:.0f} MiB, over this hub's limit of "
                    f"{limits.max_image_size / 2**20:.0f} MiB; remove packages and try again"
                )
            status(PUSHING)
            repo, tag = lab.split_ref(build.ref)
            emit(f"pushing {build.ref}")
            aux = self._follow(
                client.api.push(repo, tag=tag, stream=True, decode=True), "push", deadline, emit
            )
            digest = aux.get("Digest") or registry.registry_digest(self.registry, build.repo, tag)
            if not digest:
                raise ImagesError(f"the registry has no digest for {build.ref} after push")
            return digest
        finally:
            client.close()

    def _follow(self, stream, what: str, deadline: float, emit) -> dict:
        aux: dict = {}
        try:
            for item in stream:
                if time.monotonic() > deadline:
                    raise ImagesError(
                        f"{what} took longer than this hub's limit of "
                        f"{self.limits.build_timeout:g} seconds"
                    )
                if "error" in item:
                    detail = (item.get("errorDetail") or {}).get("message") or item["error"]
                    raise ImagesError(f"{what} failed: {detail}")
                if "stream" in item:
                    text = item["stream"].rstrip("\n")
                    if text.strip():
                        for line in text.splitlines():
                            emit(line)
                elif "status" in item and "progressDetail" not in item:
                    emit(f"{item.get('id', '')} {item['status']}".strip())
                if "aux" in item and isinstance(item["aux"], dict):
                    aux.update(item["aux"])
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()  # an abandoned build stream makes the engine cancel the build
        return aux


def _dockerfile_tar(dockerfile: str) -> io.BytesIO:
    """A build context holding only the Dockerfile (the template copies nothing in)."""
    buf = io.BytesIO()
    data = dockerfile.encode()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf
