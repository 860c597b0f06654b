"""Builder: queueing, reuse, limits and failures, with a fake engine (no Docker needed)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mesosspawner.images import registry
from mesosspawner.images import userimages as ui
from mesosspawner.images.service import builder as b

DIGEST = "sha256:" + "c" * 64
BASES = {"base-notebook": "r:5000/mesosspawner/base-notebook@sha256:" + "a" * 64}


class FakeImage:
    def __init__(self, size):
        self.attrs = {"Size": size}


class FakeEngine:
    """Records builds; each build waits for `release` so tests can see queueing."""

    def __init__(self, size=10 * 2**20, fail=None):
        self.size, self.fail = size, fail
        self.built: list[str] = []
        self.removed: list[str] = []
        self.running = 0
        self.max_running = 0
        self.release = threading.Event()
        self.release.set()
        self.lock = threading.Lock()
        engine = self

        class Api:
            def build(self, tag, **kw):
                with engine.lock:
                    engine.running += 1
                    engine.max_running = max(engine.max_running, engine.running)
                try:
                    engine.release.wait(10)
                    yield {"stream": "Step 1/4 : FROM base\n"}
                    if engine.fail:
                        yield {"error": engine.fail, "errorDetail": {"message": engine.fail}}
                        return
                    yield {"stream": "Successfully built abc\n"}
                    engine.built.append(tag)
                finally:
                    with engine.lock:
                        engine.running -= 1

            def push(self, repo, tag, **kw):
                yield {"status": "Pushed"}
                yield {"aux": {"Tag": tag, "Digest": DIGEST}}

        class Images:
            def get(self, ref):
                return FakeImage(engine.size)

            def remove(self, ref, force=False):
                engine.removed.append(ref)

        self.api, self.images = Api(), Images()

    def close(self):
        pass


def make(engine, monkeypatch, in_registry=(), **limits):
    monkeypatch.setattr(
        registry, "registry_digest", lambda reg, repo, tag: DIGEST if tag in in_registry else None
    )
    return b.Builder("r:5000", ui.USER_NAMESPACE, b.Limits(**limits), lambda timeout: engine)


def req(user="mss-alice", pip="tabulate"):
    return ui.validate_request(
        username=user, uid=1001, gid=1001, base="base-notebook", bases=BASES, pip=pip
    )


async def finish(build, timeout=10):
    for _ in range(int(timeout * 20)):
        if build.status in b.FINISHED:
            return build
        await asyncio.sleep(0.05)
    raise AssertionError(f"build still {build.status}: {build.lines}")


async def test_build_pushes_and_reports_the_digest(monkeypatch):
    engine = FakeEngine()
    builder = make(engine, monkeypatch)
    build = await finish(builder.submit(req()))
    assert build.status == b.DONE, build.lines
    assert build.digest == DIGEST
    assert build.pinned == f"r:5000/mesosspawner-users/mss-2dalice/base-notebook@{DIGEST}"
    assert engine.built == [build.ref]
    assert "Successfully built abc" in build.lines


async def test_identical_request_in_the_registry_is_reused_without_building(monkeypatch):
    engine = FakeEngine()
    builder = make(engine, monkeypatch, in_registry={req().content_hash})
    build = await finish(builder.submit(req()))
    assert build.status == b.REUSED and build.digest == DIGEST
    assert engine.built == []


async def test_a_persons_builds_run_one_at_a_time_and_are_limited(monkeypatch):
    engine = FakeEngine()
    engine.release.clear()
    builder = make(engine, monkeypatch, max_queued_per_user=2, max_concurrent=4)
    first = builder.submit(req(pip="tabulate"))
    assert builder.submit(req(pip="tabulate")) is first  # the same request is not queued twice
    second = builder.submit(req(pip="six"))
    with pytest.raises(b.BuildRefused, match="limit is 2"):
        builder.submit(req(pip="toolz"))
    other = builder.submit(req(user="mss-bob"))  # someone else's build is not held up
    await asyncio.sleep(0.3)
    assert engine.running == 2
    engine.release.set()
    for build in (first, second, other):
        assert (await finish(build)).status == b.DONE
    assert engine.max_running == 2  # alice's two never overlapped


async def test_failed_build_keeps_its_log_and_says_why(monkeypatch):
    engine = FakeEngine(fail="pip: No matching distribution found for nosuchpkg")
    build = await finish(make(engine, monkeypatch).submit(req()))
    assert build.status == b.FAILED
    assert "No matching distribution" in build.error
    assert build.lines[-1].startswith("ERROR:") and "Step 1/4 : FROM base" in build.lines


async def test_image_over_the_size_limit_is_removed_not_pushed(monkeypatch):
    engine = FakeEngine(size=3 * 2**30)
    build = await finish(make(engine, monkeypatch, max_image_size=2**30).submit(req()))
    assert build.status == b.FAILED and "over this hub's limit of 1024 MiB" in build.error
    assert engine.removed == [build.ref] and build.digest is None
