"""Builder: queueing, reuse, limits, the strip step and failures, with a fake engine (no Docker
needed; tests/docker/test_user_image_security.py runs the same on the real engine)."""

from __future__ import annotations

import asyncio
import io
import tarfile
import threading

import docker
import pytest

from mesosspawner.images import registry
from mesosspawner.images import userimages as ui
from mesosspawner.images.registry import Credentials
from mesosspawner.images.service import builder as b
from mesosspawner.images.store import ImageStore

DIGEST = "sha256:" + "c" * 64
BASE = "r:5000/mesosspawner/base-notebook@sha256:" + "a" * 64
BASES = {"base-notebook": BASE}
BASE_CONFIG = {
    "Cmd": ["start-notebook.sh"],
    "User": "1000",
    "Env": ["PATH=/usr/bin", "NB_USER=jovyan"],
    "Labels": {"lab": "yes"},
}


class FakeImage:
    def __init__(self, size, config):
        self.attrs = {"Size": size, "Config": config}


class FakeContainer:
    def __init__(self, engine, image, kwargs):
        self.engine, self.image, self.kwargs = engine, image, kwargs
        self.files = dict(engine.files)  # path -> (mode, xattrs)
        self.attrs = {"State": {"OOMKilled": False}}
        self.killed = threading.Event()
        self.removed = False

    def start(self):
        self.engine.running += 1
        self.engine.max_running = max(self.engine.max_running, self.engine.running)

    def logs(self, stream, follow):
        try:
            self.engine.release.wait(10)
            yield b"Collecting tabulate\nSuccessfully installed "
            if self.engine.hang:
                self.killed.wait(10)
                return
            yield b"tabulate\n" + self.engine.output
        finally:
            self.engine.running -= 1

    def wait(self):
        if self.killed.is_set():
            return {"StatusCode": 137}
        if self.engine.oom:
            self.attrs["State"]["OOMKilled"] = True
            return {"StatusCode": 137}
        return {"StatusCode": self.engine.exit_code}

    def kill(self):
        self.killed.set()

    def reload(self):
        pass

    def export(self):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, (mode, xattrs) in sorted(self.files.items()):
                info = tarfile.TarInfo(path)
                info.mode = mode & 0o7777
                info.pax_headers = {f"SCHILY.xattr.{x}": "\x01\x00" for x in xattrs}
                data = b"#!/bin/sh\n"
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        raw = buf.getvalue()
        return (raw[i : i + 4096] for i in range(0, len(raw), 4096))

    def put_archive(self, path, data):
        self.engine.put.append(data.read())
        if self.engine.apply_put:
            with tarfile.open(fileobj=io.BytesIO(self.engine.put[-1])) as tar:
                for m in tar:
                    self.files[m.name] = (m.mode, [])
        return True

    def commit(self, repository, tag, conf):
        ref = f"{repository}:{tag}"
        self.engine.committed[ref] = conf
        self.engine.images_by_ref[ref] = FakeImage(self.engine.size, conf)
        return self.engine.images_by_ref[ref]

    def remove(self, force=False):
        self.removed = True


class FakeEngine:
    """The docker SDK calls the builder makes; containers wait for `release`."""

    def __init__(self, size=10 * 2**20, exit_code=0, oom=False, hang=False, output=b""):
        self.size, self.exit_code, self.oom, self.hang, self.output = (
            size,
            exit_code,
            oom,
            hang,
            output,
        )
        self.files = {"usr/bin/python3": (0o755, []), "usr/bin/su": (0o4755, [])}
        self.apply_put = True
        self.images_by_ref = {BASE: FakeImage(100, BASE_CONFIG)}
        self.containers: list[FakeContainer] = []
        self.committed: dict[str, dict] = {}
        self.put: list[bytes] = []
        self.removed: list[str] = []
        self.pushed: list[tuple] = []
        self.running = 0
        self.max_running = 0
        self.release = threading.Event()
        self.release.set()
        engine = self

        class Api:
            def push(self, repo, tag, auth_config=None, **kw):
                engine.pushed.append((repo, tag, auth_config))
                yield {"status": "Pushed"}
                yield {"aux": {"Tag": tag, "Digest": DIGEST}}

            def pull(self, repo, tag, auth_config=None, **kw):
                engine.images_by_ref[f"{repo}@{tag}"] = FakeImage(100, BASE_CONFIG)
                yield {"status": "pulled"}

        class Images:
            def get(self, ref):
                try:
                    return engine.images_by_ref[ref]
                except KeyError:
                    raise docker.errors.ImageNotFound(ref) from None

            def remove(self, ref, force=False):
                engine.removed.append(ref)
                engine.images_by_ref.pop(ref, None)

        class Containers:
            def create(self, image, **kwargs):
                container = FakeContainer(engine, image, kwargs)
                engine.containers.append(container)
                return container

        self.api, self.images, self.containers_api = Api(), Images(), Containers()

    @property
    def client(self):
        engine = self

        class Client:
            api, images, containers = engine.api, engine.images, engine.containers_api

            def close(self):
                pass

        return Client()


def make(engine, tmp_path, monkeypatch=None, recorded=(), **limits):
    store = ImageStore(tmp_path / "images.json", ui.USER_NAMESPACE)
    for r in recorded:
        store.add(r)
    if monkeypatch:
        monkeypatch.setattr(registry, "registry_digest", lambda *a, **k: None)
    return b.Builder(
        "r:5000",
        ui.USER_NAMESPACE,
        b.Limits(**limits),
        lambda timeout: engine.client,
        store,
        auth=Credentials("images-service", "s3cret"),
    )


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


async def test_build_runs_limited_strips_commits_pushes_records_and_cleans_up(tmp_path):
    engine = FakeEngine()
    builder = make(engine, tmp_path, memory=2**30, cpus=1.5, pids=300)
    build = await finish(builder.submit(req()))
    assert build.status == b.DONE, build.lines
    assert build.digest == DIGEST
    assert build.pinned == f"r:5000/mesosspawner-users/mss-2dalice/base-notebook@{DIGEST}"
    (container,) = engine.containers
    kw = container.kwargs
    assert (kw["mem_limit"], kw["memswap_limit"], kw["nano_cpus"], kw["pids_limit"]) == (
        2**30,
        2**30,
        1_500_000_000,
        300,
    )
    assert kw["user"] == "0" and kw["command"] == [ui.run_script(req())]
    assert container.image == BASE
    # The last step: su lost its setuid bit, from outside the container.
    (put,) = engine.put
    with tarfile.open(fileobj=io.BytesIO(put)) as tar:
        assert [(m.name, oct(m.mode)) for m in tar] == [("usr/bin/su", "0o755")]
    assert "  /usr/bin/su: setuid" in build.lines
    # Committed with the base's command and user, the request's ENV and labels; pushed with the
    # service's login; the image and the container are gone from the engine.
    conf = engine.committed[build.ref]
    assert conf["Cmd"] == ["start-notebook.sh"] and conf["User"] == "1000"
    assert conf["Env"] == ["PATH=/usr/bin", "NB_USER=mss-alice", "NB_UID=1001", "NB_GID=1001"]
    assert conf["Labels"]["lab"] == "yes" and conf["Labels"][ui.LABEL_HASH] == build.tag
    assert engine.pushed == [
        (
            build.ref.rsplit(":", 1)[0],
            build.tag,
            {"username": "images-service", "password": "s3cret"},
        )
    ]
    assert engine.removed == [build.ref] and container.removed
    (record,) = builder.store.of("mss-alice")
    assert (record.repo, record.tag, record.digest) == (build.repo, build.tag, DIGEST)


async def test_a_recorded_identical_request_is_reused_without_building(tmp_path):
    engine = FakeEngine()
    first = await finish(make(engine, tmp_path).submit(req()))
    again = await finish(make(engine, tmp_path).submit(req()))  # a restarted service
    assert again.status == b.REUSED and again.digest == first.digest
    assert len(engine.containers) == 1


async def test_builds_run_one_at_a_time_per_person_and_the_queues_are_capped(tmp_path):
    engine = FakeEngine()
    engine.release.clear()
    builder = make(engine, tmp_path, max_queued_per_user=2, max_concurrent=4, max_queued_total=3)
    first = builder.submit(req(pip="tabulate"))
    assert builder.submit(req(pip="tabulate")) is first  # the same request is not queued twice
    second = builder.submit(req(pip="six"))
    with pytest.raises(b.BuildRefused, match="limit is 2"):
        builder.submit(req(pip="toolz"))
    other = builder.submit(req(user="mss-bob"))  # someone else's build is not held up
    with pytest.raises(b.BuildRefused, match="the build queue is full .3 builds .* limit is 3"):
        builder.submit(req(user="mss-carol"))
    await asyncio.sleep(0.3)
    assert engine.running == 2
    engine.release.set()
    for build in (first, second, other):
        assert (await finish(build)).status == b.DONE
    assert engine.max_running == 2  # alice's two never overlapped


async def test_a_failing_script_keeps_its_log_and_says_why(tmp_path):
    engine = FakeEngine(exit_code=1, output=b"ERROR: No matching distribution found for x\n")
    build = await finish(make(engine, tmp_path).submit(req()))
    assert build.status == b.FAILED
    assert "failed with exit code 1" in build.error
    assert "ERROR: No matching distribution found for x" in build.lines
    assert engine.pushed == [] and engine.containers[0].removed
    assert builder_records(tmp_path) == []


def builder_records(tmp_path):
    return ImageStore(tmp_path / "images.json", ui.USER_NAMESPACE).records()


async def test_a_build_over_its_memory_limit_fails_saying_so(tmp_path):
    engine = FakeEngine(oom=True)
    build = await finish(make(engine, tmp_path, memory=512 * 2**20).submit(req()))
    assert build.status == b.FAILED
    assert build.error.startswith(
        "the build ran out of memory: it needs more than this hub's limit of 512 MiB"
    )
    assert engine.pushed == [] and engine.containers[0].removed


async def test_a_build_over_its_time_is_killed_and_says_so(tmp_path):
    engine = FakeEngine(hang=True)
    build = await finish(make(engine, tmp_path, build_timeout=0.5).submit(req()))
    assert build.status == b.FAILED
    assert "took longer than this hub's limit of 0.5 seconds" in build.error
    assert engine.containers[0].killed.is_set() and engine.pushed == []


async def test_files_still_privileged_after_the_strip_are_never_pushed(tmp_path):
    engine = FakeEngine()
    engine.files["usr/local/bin/rootpy"] = (0o755, ["security.capability"])
    engine.apply_put = False  # an engine that did not replace them
    build = await finish(make(engine, tmp_path).submit(req()))
    assert build.status == b.FAILED
    assert build.error.startswith("privileged files remain after the strip step")
    assert "/usr/local/bin/rootpy: file capabilities" in build.error
    assert engine.pushed == [] and engine.removed == []


async def test_image_over_the_size_limit_is_removed_not_pushed(tmp_path):
    engine = FakeEngine(size=3 * 2**30)
    build = await finish(make(engine, tmp_path, max_image_size=2**30).submit(req()))
    assert build.status == b.FAILED and "over this hub's limit of 1024 MiB" in build.error
    assert engine.removed == [build.ref] and build.digest is None and engine.pushed == []


async def test_the_log_is_capped_but_says_how_the_build_ended(tmp_path):
    engine = FakeEngine(output=b"".join(b"line %d of noise\n" % i for i in range(5000)))
    build = await finish(make(engine, tmp_path, max_log_bytes=4096).submit(req()))
    assert build.status == b.DONE
    assert sum(len(line) + 1 for line in build.lines[:-1]) < 4096 + 200
    assert build.dropped > 4000
    assert any(line.startswith("[log cut: over this hub's limit of 4 KiB") for line in build.lines)
    assert build.lines[-1] == f"pushed {build.pinned}"
