"""The lab's images: build those whose build context changed, push, report digests.

Each image is tagged ``REGISTRY/mesosspawner/NAME:HASH`` where HASH is a content hash of its
build context (file paths, modes and contents), its build arguments and the hash of the image it
is built on. So an unchanged context maps to a tag the registry already has: nothing is built or
pushed. A changed Dockerfile gives that image (and the images built on it) a new tag. The build
order and dependencies are declared in ``docker/images.toml``, and so are big build inputs
(``[[image.download]]``: fetched once into a cache by ``downloads``, counted in the hash by their
pinned sha256).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tarfile
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .downloads import Download, DownloadError
from .downloads import fetch as fetch_download
from .errors import ImagesError
from .registry import registry_digest

NAMESPACE = "mesosspawner"
HASH_LENGTH = 12
DOWNLOADS_DIR = "downloads"  # where an image's downloads appear in its build context
_SKIP_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git"}


@dataclass(frozen=True)
class ImageSpec:
    name: str
    base: str | None = None
    context: tuple[str, ...] = ()
    downloads: tuple[Download, ...] = ()  # put into the context under downloads/


@dataclass
class ImageResult:
    name: str
    ref: str
    content_hash: str
    digest: str | None = None
    built: bool = False
    pushed: bool = False
    depends_on: list[str] = field(default_factory=list)

    @property
    def pinned(self) -> str:
        """The reference pinned by digest (``REF@sha256:...``), or the tag when not pushed."""
        return f"{self.ref}@{self.digest}" if self.digest else self.ref


# ------------------------------------------------------------------ pure: specs and hashing


def load_specs(docker_dir: Path) -> list[ImageSpec]:
    """Read ``images.toml`` in *docker_dir*: images in build order, each base declared earlier."""
    path = docker_dir / "images.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ImagesError(
            f"{path} not found: is --docker-dir the lab's docker/ directory?"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ImagesError(f"{path} is not valid TOML: {exc}") from None
    specs: list[ImageSpec] = []
    seen: set[str] = set()
    for entry in data.get("image", []):
        name = entry.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise ImagesError(f"{path}: image name {name!r} must be a directory name under docker/")
        if name in seen:
            raise ImagesError(f"{path}: image {name!r} is declared twice")
        base = entry.get("base")
        if base is not None and base not in seen:
            raise ImagesError(
                f"{path}: image {name!r} has base {base!r}, which must be declared above it"
            )
        if not (docker_dir / name / "Dockerfile").is_file():
            raise ImagesError(f"{path}: image {name!r} has no {docker_dir / name / 'Dockerfile'}")
        downloads = []
        for d in entry.get("download", []):
            try:
                downloads.append(Download(d["file"], d["pip"], d["sha256"]))
            except (KeyError, TypeError, DownloadError) as exc:
                raise ImagesError(
                    f"{path}: image {name!r}: a download needs file, pip and sha256 ({exc})"
                ) from None
        specs.append(ImageSpec(name, base, tuple(entry.get("context", ())), tuple(downloads)))
        seen.add(name)
    if not specs:
        raise ImagesError(f"{path} declares no [[image]]")
    return specs


def select(specs: list[ImageSpec], only: Iterable[str] | None) -> list[ImageSpec]:
    """The images named in *only* plus the images they are built on, in build order."""
    if not only:
        return list(specs)
    by_name = {s.name: s for s in specs}
    wanted: set[str] = set()
    for name in only:
        if name not in by_name:
            raise ImagesError(f"unknown image {name!r}; known images: {', '.join(by_name)}")
        while name is not None and name not in wanted:
            wanted.add(name)
            name = by_name[name].base
    return [s for s in specs if s.name in wanted]


def context_files(docker_dir: Path, spec: ImageSpec) -> list[tuple[str, Path]]:
    """(path in the build context, file on disk) for every file of the image's context, sorted."""
    files: dict[str, Path] = {}

    def add_tree(source: Path, prefix: str) -> None:
        if source.is_file():
            files[prefix] = source
            return
        for root, dirs, names in os.walk(source):
            dirs[:] = sorted(d for d in dirs if d not in _SKIP_NAMES)
            for fname in names:
                if fname.endswith((".pyc", ".pyo")):
                    continue
                full = Path(root) / fname
                files[f"{prefix}/{full.relative_to(source).as_posix()}".lstrip("/")] = full

    add_tree(docker_dir / spec.name, "")
    repo_root = docker_dir.resolve().parent
    for extra in spec.context:
        source = (repo_root / extra).resolve()
        if repo_root not in source.parents:
            raise ImagesError(f"image {spec.name!r}: context path {extra!r} leaves the repository")
        if source.exists():
            add_tree(source, Path(extra).as_posix())
    return sorted(files.items())


def content_hash(
    files: Iterable[tuple[str, bytes, bool]],
    build_args: Mapping[str, str],
    base_hash: str | None,
) -> str:
    """Hash of (context path, executable bit, contents) triples, build args and the base's hash."""
    digest = hashlib.sha256()
    for path, data, executable in sorted(files):
        digest.update(f"file {path} {'x' if executable else '-'} {len(data)}\n".encode())
        digest.update(data)
    for key in sorted(build_args):
        digest.update(f"arg {key}={build_args[key]}\n".encode())
    digest.update(f"base {base_hash or '-'}\n".encode())
    return digest.hexdigest()[:HASH_LENGTH]


def compute_tags(
    docker_dir: Path, specs: list[ImageSpec], build_args: Mapping[str, str]
) -> dict[str, str]:
    """Content-hash tag of every image in *specs* (build order), without touching an engine.

    ``BASE_IMAGE`` counts only for images without an in-repo base; the others hash their base's tag.
    """
    tags: dict[str, str] = {}
    for spec in specs:
        args = dict(build_args)
        if spec.base:
            args.pop("BASE_IMAGE", None)
        files = [
            (arc, path.read_bytes(), os.access(path, os.X_OK))
            for arc, path in context_files(docker_dir, spec)
        ]
        # A download counts by its pinned hash: the same for everyone, and no 318 MB read.
        files += [
            (f"{DOWNLOADS_DIR}/{d.file}", f"sha256:{d.sha256}".encode(), False)
            for d in spec.downloads
        ]
        tags[spec.name] = content_hash(files, args, tags[spec.base] if spec.base else None)
    return tags


def image_ref(registry: str | None, name: str, tag: str, namespace: str = NAMESPACE) -> str:
    repo = f"{namespace}/{name}"
    return f"{registry.rstrip('/')}/{repo}:{tag}" if registry else f"{repo}:{tag}"


def split_ref(ref: str) -> tuple[str, str]:
    """``host/repo/name:tag`` -> (``host/repo/name``, ``tag``)."""
    repo, _, tag = ref.rpartition(":")
    if not repo or "/" in tag:
        return ref, "latest"
    return repo, tag


def parse_build_args(values: Iterable[str]) -> dict[str, str]:
    args: dict[str, str] = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise ImagesError(f"--build-arg {value!r} must look like NAME=VALUE")
        args[key] = val
    return args


# ------------------------------------------------------------------ I/O: the engine


def connect(docker_host: str | None = None):
    """A docker client for *docker_host* (default: DOCKER_HOST or the local socket) that answers."""
    try:
        import docker
    except ImportError:
        raise ImagesError(
            "the images wing needs the docker package: pip install 'mesosspawner[images]'"
        ) from None

    try:
        if docker_host:
            client = docker.DockerClient(base_url=docker_host, version="auto", timeout=600)
        else:
            client = docker.from_env(version="auto", timeout=600)
        client.ping()
    except Exception as exc:
        where = docker_host or os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        raise ImagesError(
            f"no Docker engine answers at {where} ({exc}); start dockerd or set DOCKER_HOST"
        ) from None
    return client


def _local_image(client, ref: str):
    import docker

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def _context_tar(entries: list[tuple[str, Path]]):
    """A reproducible tar of the context (fixed owner and mtime, modes 0644/0755); in memory up
    to 64 MB, on disk beyond (downloads make contexts of hundreds of MB)."""
    buf = tempfile.SpooledTemporaryFile(max_size=64 << 20)  # noqa: SIM115 - handed to the engine
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for arcname, path in entries:
            info = tarfile.TarInfo(arcname)
            info.size = path.stat().st_size
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.mtime = 0
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
    buf.seek(0)
    return buf


def _stream(lines, what: str, log: Callable[[str], None]) -> dict:
    """Follow an engine progress stream; raise ImagesError on its error; return the last aux."""
    aux: dict = {}
    tail: list[str] = []
    for line in lines:
        if "error" in line:
            detail = line.get("errorDetail", {}).get("message") or line["error"]
            raise ImagesError(f"{what} failed: {detail}\n" + "".join(tail[-20:]))
        if "stream" in line:
            tail.append(line["stream"])
            log(line["stream"].rstrip("\n"))
        elif "status" in line and "progressDetail" not in line:
            log(f"{line.get('id', '')} {line['status']}".strip())
        if "aux" in line:
            aux.update(line["aux"])
    return aux


def build_and_push(
    client,
    docker_dir: Path,
    registry: str | None,
    only: Iterable[str] | None = None,
    build_args: Mapping[str, str] | None = None,
    push: bool = False,
    namespace: str = NAMESPACE,
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr),
) -> dict[str, ImageResult]:
    """Build (when its tag is in neither the registry nor the engine) and push each image.

    ``BASE_IMAGE`` in *build_args* goes to images without a ``base``; the others get their
    base's reference. Returns results by image name, in build order.
    """
    docker_dir = Path(docker_dir)
    build_args = dict(build_args or {})
    specs = select(load_specs(docker_dir), only)
    if push and not registry:
        raise ImagesError("--push needs --registry HOST:PORT")
    plan = compute_tags(docker_dir, specs, build_args)
    results: dict[str, ImageResult] = {}
    for spec in specs:
        tag = plan[spec.name]
        entries = context_files(docker_dir, spec)
        args = dict(build_args)
        base = results[spec.base] if spec.base else None
        if base:
            args.pop("BASE_IMAGE", None)
        ref = image_ref(registry, spec.name, tag, namespace)
        local_ref = image_ref(None, spec.name, tag, namespace)
        result = ImageResult(spec.name, ref, tag, depends_on=[base.name] if base else [])
        results[spec.name] = result
        repo_path = f"{namespace}/{spec.name}"
        if registry:
            result.digest = registry_digest(registry, repo_path, tag)
            if result.digest:
                log(f"{spec.name}: {ref} already in the registry; nothing to build or push")
                continue
        image = _local_image(client, local_ref) or _local_image(client, ref)
        if image is None:
            if base:
                _ensure_local(client, base, namespace, log)
                args["BASE_IMAGE"] = base.ref
            for d in spec.downloads:
                try:
                    entries.append((f"{DOWNLOADS_DIR}/{d.file}", fetch_download(d)))
                except DownloadError as exc:
                    raise ImagesError(f"{spec.name}: {exc}") from None
            log(f"{spec.name}: building {ref}")
            _stream(
                client.api.build(
                    fileobj=_context_tar(entries),
                    custom_context=True,
                    tag=local_ref,
                    buildargs=args,
                    rm=True,
                    forcerm=True,
                    pull=False,
                    decode=True,
                ),
                f"building {spec.name}",
                log,
            )
            image = client.images.get(local_ref)
            result.built = True
        else:
            log(f"{spec.name}: {local_ref} already built in this engine")
        if ref != local_ref:
            image.tag(*split_ref(ref))
            image.tag(*split_ref(local_ref))
        if push:
            log(f"{spec.name}: pushing {ref}")
            repo, _ = split_ref(ref)
            aux = _stream(
                client.api.push(repo, tag=tag, stream=True, decode=True), f"pushing {ref}", log
            )
            result.digest = aux.get("Digest") or registry_digest(registry, repo_path, tag)
            result.pushed = True
    return results


def _ensure_local(client, result: ImageResult, namespace: str, log: Callable[[str], None]) -> None:
    """A base image skipped because the registry has it must be local before building on it."""
    if _local_image(client, result.ref) is not None:
        return
    local = _local_image(client, image_ref(None, result.name, result.content_hash, namespace))
    if local is not None:
        local.tag(*split_ref(result.ref))
        return
    log(f"{result.name}: pulling {result.ref} to build on it")
    repo, tag = split_ref(result.ref)
    _stream(client.api.pull(repo, tag=tag, stream=True, decode=True), f"pulling {result.ref}", log)
