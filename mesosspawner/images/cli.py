"""``mesosspawner-images``: build the lab's images whose build context changed, push, print
digests; ``mesosspawner-images serve``: the images service (a JupyterHub service);
``mesosspawner-images download FILE``: a big build input declared in images.toml, fetched once
into the cache (its path printed).

Also ``python -m mesosspawner.images``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from .downloads import DownloadError, fetch
from .errors import ImagesError
from .lab import NAMESPACE, build_and_push, connect, load_specs, parse_build_args


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
    from .registry import credentials_for, load_docker_config
    from .service.app import ServiceConfig, serve
    from .service.builder import Limits
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
        "--docker-config",
        metavar="FILE",
        help="Docker client config (config.json, as `docker login` writes it) holding the "
        "registry's login, used to read the registry, pull bases and push; without it the "
        "registry must allow anonymous access",
    )
    parser.add_argument(
        "--store",
        default="images-service/images.json",
        metavar="FILE",
        help="where the service records the images it built (the only images 'My images' "
        "offers; the hub reads it too); default: images-service/images.json",
    )
    parser.add_argument(
        "--catalog-ttl",
        type=float,
        default=60.0,
        help="seconds the registry browser reuses one walk of the registry's catalog",
    )
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
        "--max-queued-total",
        type=int,
        default=limits.max_queued_total,
        help="builds waiting or running for everyone together; more get HTTP 429",
    )
    parser.add_argument(
        "--build-memory",
        type=_parse_size,
        default=limits.memory,
        help="memory of a build container (e.g. 2G; no swap): a build over it fails",
    )
    parser.add_argument(
        "--build-cpus", type=float, default=limits.cpus, help="CPUs a build container may use"
    )
    parser.add_argument(
        "--build-pids",
        type=int,
        default=limits.pids,
        help="processes and threads a build container may run",
    )
    parser.add_argument(
        "--max-log-size",
        type=_parse_size,
        default=limits.max_log_bytes,
        help="of one build's log kept and shown (e.g. 2M); the rest is dropped",
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
    try:
        auth = None
        if opts.docker_config:
            auth = credentials_for(opts.registry, load_docker_config(opts.docker_config))
            if auth is None:
                parser.error(
                    f"--docker-config {opts.docker_config} has no login for {opts.registry}"
                )
    except ImagesError as exc:
        parser.error(str(exc))
    config = ServiceConfig(
        registry=opts.registry,
        bases=bases,
        store=opts.store,
        auth=auth,
        catalog_ttl=opts.catalog_ttl,
        namespace=opts.namespace,
        limits=Limits(
            build_timeout=opts.build_timeout,
            max_image_size=opts.max_image_size,
            max_queued_per_user=opts.max_queued,
            max_queued_total=opts.max_queued_total,
            max_concurrent=opts.max_concurrent,
            max_packages=opts.max_packages,
            allow_apt=not opts.no_apt,
            memory=opts.build_memory,
            cpus=opts.build_cpus,
            pids=opts.build_pids,
            max_log_bytes=opts.max_log_size,
        ),
        docker_host=opts.docker_host,
        prefix=opts.prefix if opts.prefix.endswith("/") else opts.prefix + "/",
        hub_base_url=hub_base if hub_base.endswith("/") else hub_base + "/",
        hub_api_url=os.environ.get("JUPYTERHUB_API_URL", ""),
        api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""),
    )
    serve(config, opts.bind_url)
    return 0


def download_main(argv: list[str]) -> int:
    """``mesosspawner-images download FILE``: fetch a declared download (if not cached)."""
    parser = argparse.ArgumentParser(
        prog="mesosspawner-images download",
        description="Fetch a big build input declared in images.toml ([[image.download]]) into"
        " the cache, once, checked against its sha256; print its path.",
    )
    parser.add_argument("file", help="the download's file name, e.g. pyspark-3.5.9.tar.gz")
    parser.add_argument("--docker-dir", type=Path, default=Path("docker"))
    opts = parser.parse_args(argv)
    try:
        known = {d.file: d for s in load_specs(opts.docker_dir) for d in s.downloads}
        if opts.file not in known:
            raise ImagesError(f"{opts.file!r} is not declared; known: {', '.join(known)}")
        print(fetch(known[opts.file]))
    except (ImagesError, DownloadError) as exc:
        print(f"mesosspawner-images download: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve_main(argv[1:])
    if argv[:1] == ["download"]:
        return download_main(argv[1:])
    parser = argparse.ArgumentParser(
        epilog="`mesosspawner-images serve --help`: the images service (registry browser, "
        "user-built images); `mesosspawner-images download --help`: a declared download.",
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
