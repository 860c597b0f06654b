"""`mesosspawner-images`: build the lab's images whose build context changed, push, print digests.

Each image is tagged ``REGISTRY/mesosspawner/NAME:HASH`` where HASH is a content hash of its
build context (file paths, modes and contents), its build arguments and the hash of the image it
is built on. So an unchanged context maps to a tag the registry already has: nothing is built or
pushed. A changed Dockerfile gives that image (and the images built on it) a new tag. The build
order and dependencies are declared in ``docker/images.toml``, and so are big build inputs
(``[[image.download]]``: fetched once into a cache by ``downloads``, counted in the hash by their
pinned sha256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tarfile
import tempfile
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .downloads import Download, DownloadError
from .downloads import fetch as fetch_download

NAMESPACE = "mesosspawner"
HASH_LENGTH = 12
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)
DOWNLOADS_DIR = "downloads"  # where an image's downloads appear in its build context
_SKIP_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git"}


class ImagesError(Exception):
    """A problem the person running the command can fix; printed without a traceback."""


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


# ------------------------------------------------------------------ I/O: registry and engine


def registry_digest(registry: str, repo: str, tag: str, timeout: float = 30.0) -> str | None:
    """The manifest digest of ``repo:tag`` in *registry* (Docker Registry HTTP API v2), or None.

    Loopback registries are spoken to over plain HTTP, as the Docker engine does; others over HTTPS.
    """
    host = registry.split(":")[0]
    scheme = "http" if host in ("localhost", "127.0.0.1", "::1") else "https"
    url = f"{scheme}://{registry}/v2/{repo}/manifests/{tag}"
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": MANIFEST_ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            digest = resp.headers.get("Docker-Content-Digest")
            if not digest:
                raise ImagesError(f"registry {registry} answered {url} without a digest header")
            return digest
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        if exc.code == 401:
            raise ImagesError(
                f"registry {registry} requires authentication for {repo}; "
                "this command supports registries that allow anonymous reads"
            ) from None
        raise ImagesError(f"registry {registry} answered {exc.code} for {url}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ImagesError(
            f"cannot reach registry {registry} ({url}): {reason}; "
            "--registry takes HOST:PORT of a running Docker registry"
        ) from None


def connect(docker_host: str | None = None):
    """A docker client for *docker_host* (default: DOCKER_HOST or the local socket) that answers."""
    import docker

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


# ------------------------------------------------------------------ command line


def _parse_size(text: str) -> int:
    units = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = value[-1:] if value[-1:] in units else ""
    try:
        return int(float(value[: len(value) - len(unit)]) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 4G or 512M") from None


def serve_main(argv: list[str]) -> int:
    """``mesosspawner-images serve``: the images service (a JupyterHub service)."""
    from .imageservice.app import ServiceConfig, serve
    from .imageservice.builder import Limits
    from .userimages import USER_NAMESPACE

    parser = argparse.ArgumentParser(
        prog="mesosspawner-images serve",
        description="Registry browser and 'build my image' as a JupyterHub service at "
        "/services/NAME/ (hub OAuth login). Run by the hub: see docs/user-images.md.",
    )
    parser.add_argument("--registry", required=True, help="HOST:PORT of the lab's registry")
    parser.add_argument(
        "--base",
        action="append",
        default=[],
        metavar="NAME=REF",
        help="a lab image people may build on (repeat); REF is a tag or a digest reference, "
        "resolved to its digest in the registry",
    )
    parser.add_argument(
        "--namespace",
        default=USER_NAMESPACE,
        help="registry namespace of people's images: NAMESPACE/<escaped user>/<base>:<hash>",
    )
    parser.add_argument("--docker-host", help="Docker engine URL (default: DOCKER_HOST or socket)")
    parser.add_argument(
        "--bind-url",
        default=os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"),
        help="where to listen (default: $JUPYTERHUB_SERVICE_URL, set by the hub)",
    )
    parser.add_argument(
        "--prefix",
        default=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/images/"),
        help="URL prefix (default: $JUPYTERHUB_SERVICE_PREFIX)",
    )
    limits = Limits()
    parser.add_argument(
        "--build-timeout",
        type=float,
        default=limits.build_timeout,
        help="seconds a build and push may take",
    )
    parser.add_argument(
        "--max-image-size",
        type=_parse_size,
        default=limits.max_image_size,
        help="largest image (e.g. 4G) a build may produce; a larger one is deleted, not pushed",
    )
    parser.add_argument(
        "--max-queued",
        type=int,
        default=limits.max_queued_per_user,
        help="builds a person may have waiting or running (they run one at a time)",
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=limits.max_concurrent,
        help="builds running at once on the engine, for everyone",
    )
    parser.add_argument(
        "--max-packages", type=int, default=limits.max_packages, help="packages per request"
    )
    parser.add_argument("--no-apt", action="store_true", help="allow pip packages only")
    opts = parser.parse_args(argv)
    try:
        bases = parse_build_args(opts.base)
    except ImagesError:
        parser.error("--base takes NAME=REF")
    hub_base = os.environ.get("JUPYTERHUB_BASE_URL", "/")
    config = ServiceConfig(
        registry=opts.registry,
        bases=bases,
        namespace=opts.namespace,
        limits=Limits(
            build_timeout=opts.build_timeout,
            max_image_size=opts.max_image_size,
            max_queued_per_user=opts.max_queued,
            max_concurrent=opts.max_concurrent,
            max_packages=opts.max_packages,
            allow_apt=not opts.no_apt,
        ),
        docker_host=opts.docker_host,
        prefix=opts.prefix if opts.prefix.endswith("/") else opts.prefix + "/",
        hub_base_url=hub_base if hub_base.endswith("/") else hub_base + "/",
        hub_api_url=os.environ.get("JUPYTERHUB_API_URL", ""),
        api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""),
    )
    serve(config, opts.bind_url)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve_main(argv[1:])
    parser = argparse.ArgumentParser(
        epilog="`mesosspawner-images serve --help`: the images service (registry browser, "
        "user-built images).",
        prog="mesosspawner-images",
        description="Build the lab's Docker images whose build context changed, tag them with a "
        "content hash, push them and print their digests.",
    )
    parser.add_argument(
        "--docker-dir",
        type=Path,
        default=Path("docker"),
        help="directory holding images.toml and one directory per image",
    )
    parser.add_argument("--registry", help="HOST:PORT of the registry the images go to")
    parser.add_argument("--push", action="store_true", help="push images the registry lacks")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="build only these images (and the images they are built on)",
    )
    parser.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="build argument; BASE_IMAGE applies to images without an in-repo base",
    )
    parser.add_argument(
        "--namespace", default=NAMESPACE, help="repository namespace in the registry"
    )
    parser.add_argument(
        "--docker-host", help="Docker engine URL (default: DOCKER_HOST or local socket)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    opts = parser.parse_args(argv)
    try:
        build_args = parse_build_args(opts.build_arg)
        load_specs(opts.docker_dir)  # fail on a bad directory before touching the engine
        client = connect(opts.docker_host)
        results = build_and_push(
            client,
            opts.docker_dir,
            opts.registry,
            only=opts.only,
            build_args=build_args,
            push=opts.push,
            namespace=opts.namespace,
        )
    except ImagesError as exc:
        print(f"mesosspawner-images: {exc}", file=sys.stderr)
        return 1
    if opts.json:
        print(json.dumps([asdict(r) | {"pinned": r.pinned} for r in results.values()], indent=2))
    else:
        for r in results.values():
            print(f"{r.name} {r.pinned}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
