"""Build and push people's images: one build at a time per person, in a thread, with limits.

The engine work (``container_build``: docker SDK, blocking) runs in a thread; log lines cross
back to the event loop with ``call_soon_threadsafe``, where readers of a build's log wait for
them. An identical request whose content-hash tag the service already recorded is reused without
a build. A pushed image is recorded in the service's store (``store``): the only images "My
images" offers.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import registry
from ..errors import ImagesError
from ..registry import Credentials
from ..store import ImageStore, Record
from ..userimages import BuildRequest, image_env, image_repo, labels, render_dockerfile, run_script
from .container_build import ContainerBuild
from .limits import Limits

log = logging.getLogger(__name__)
MAX_LINE = 2000  # characters of one log line kept

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
    max_log_bytes: int = Limits.max_log_bytes
    log_bytes: int = 0
    dropped: int = 0  # lines over the log cap, not kept
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

    def add(self, line: str, *, always: bool = False) -> None:
        """Append a log line; past the log cap lines are counted, not kept (``always``: the
        service's own closing lines, which say how the build ended)."""
        if len(line) > MAX_LINE:
            line = line[:MAX_LINE] + f" [... {len(line) - MAX_LINE} characters cut]"
        if not always and self.log_bytes + len(line) + 1 > self.max_log_bytes:
            if not self.dropped:
                self.lines.append(
                    f"[log cut: over this hub's limit of {self.max_log_bytes // 1024} KiB; the "
                    "build goes on]"
                )
            self.dropped += 1
            self._notify()
            return
        self.log_bytes += len(line) + 1
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
            "log_lines_dropped": self.dropped,
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
        store: ImageStore,
        auth: Credentials | None = None,
        keep: int = 200,
        on_pushed: Callable[[Record], None] | None = None,
    ) -> None:
        self.registry = registry
        self.namespace = namespace
        self.limits = limits
        self.store = store
        self.auth = auth
        self._connect = connect  # timeout -> docker client
        self._on_pushed = on_pushed
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
        everyone = sum(1 for b in self._builds.values() if b.status not in FINISHED)
        if everyone >= self.limits.max_queued_total:
            raise BuildRefused(
                f"the build queue is full ({everyone} builds queued or running, this hub's limit "
                f"is {self.limits.max_queued_total}); try again in a few minutes"
            )
        dockerfile = render_dockerfile(req)
        build = Build(
            secrets.token_hex(6),
            req.username,
            req,
            self.registry,
            repo,
            dockerfile,
            max_log_bytes=self.limits.max_log_bytes,
        )
        self._builds[build.id] = build
        while len(self._builds) > self._keep:
            oldest = next(iter(self._builds.values()))
            if oldest.status not in FINISHED:
                break
            self._builds.popitem(last=False)
        asyncio.get_running_loop().create_task(self._run(build))
        return build

    def _recorded(self, build: Build) -> Record | None:
        for record in self.store.of(build.username):
            if (record.repo, record.tag, record.registry) == (build.repo, build.tag, self.registry):
                return record
        return None

    async def _run(self, build: Build) -> None:
        lock = self._user_locks.setdefault(build.username, asyncio.Lock())
        try:
            async with lock:  # one build at a time per person, in order
                record = await asyncio.to_thread(self._recorded, build)
                if record is not None:
                    build.digest = record.digest
                    build.add(f"{build.ref} was built before: reusing {record.pinned}")
                    build.started = build.created
                    build.set_status(REUSED)
                    return
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
                    record = Record(
                        user=build.username,
                        registry=self.registry,
                        repo=build.repo,
                        base=build.request.base,
                        tag=build.tag,
                        digest=build.digest,
                        packages=build.request.packages_summary(),
                        created=datetime.now(UTC).isoformat(timespec="seconds"),
                    )
                    await asyncio.to_thread(self.store.add, record)
                    if self._on_pushed:
                        self._on_pushed(record)
                    build.add(f"pushed {build.pinned}", always=True)
                    build.set_status(DONE)
        except ImagesError as exc:
            build.add(f"ERROR: {exc}", always=True)
            build.set_status(FAILED, str(exc).splitlines()[0])
        except Exception as exc:  # noqa: BLE001 - shown to the person, logged for the admin
            log.exception("build %s of %s failed", build.id, build.username)
            build.add(f"ERROR: {type(exc).__name__}: {exc}", always=True)
            build.set_status(FAILED, f"{type(exc).__name__}: {exc}")
        finally:
            log.info(
                "build %s of %s for %s: %s in %.1fs%s",
                build.id,
                build.ref,
                build.username,
                build.status,
                build.seconds or 0.0,
                f" ({build.error})" if build.error else "",
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
            job = ContainerBuild(
                client,
                build_id=build.id,
                base_ref=build.request.base_ref,
                script=run_script(build.request),
                env=image_env(build.request),
                labels=labels(build.request, build.dockerfile),
                ref=build.ref,
                limits=limits,
                auth=self.auth,
                emit=emit,
                status=status,
                follow=lambda stream, what, until: self._follow(stream, what, until, emit),
            )
            digest = job.run(deadline) or registry.registry_digest(
                self.registry, build.repo, build.tag, auth=self.auth
            )
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
                close()
        return aux
