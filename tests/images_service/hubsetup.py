"""A real hub with the images service registered, on localmesos with the Docker containerizer."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mesosspawner.images.lab import split_ref
from mesosspawner.images.registry import registry_digest
from mesosspawner.testing.hub import Hub
from mesosspawner.testing.net import free_port
from tests.services.cluster import lab_agents
from tests.services.e2e import docker_notebook_config, mesos_config

PREFIX = "/services/images/"
# A tiny pure-Python package no notebook image carries (one module, no dependencies).
PIP_PACKAGE = "tabulate==0.9.0"
PIP_MODULE = "tabulate"


async def pinned(notebook_image: str) -> str:
    repo, tag = split_ref(notebook_image)
    registry, _, path = repo.partition("/")
    digest = await asyncio.to_thread(registry_digest, registry, path, tag)
    assert digest, f"{notebook_image} is not in the registry"
    return f"{repo}@{digest}"


async def images_hub(
    hub_factory,
    clusters,
    homes,
    registry: str,
    notebook_image: str,
    *,
    bases: dict[str, str] | None = None,
    store: Path | None = None,
    docker_config: Path | None = None,
    agent_docker_config: Path | None = None,
    extra_args: tuple[str, ...] = (),
    extra: str = "",
) -> Hub:
    """A launched hub: notebooks in Docker from the lab's base image, the images service on
    (``docker_config``: its registry login; ``agent_docker_config``: the agents' login, as
    ``--docker_config``; ``store``: where it records what it built)."""
    agents = lab_agents()
    if agent_docker_config is not None:
        agents = tuple(
            replace(a, local_keys=(*a.local_keys, ("docker_config", str(agent_docker_config))))
            for a in agents
        )
    cluster = clusters("localmesos", agents=agents)
    base = await pinned(notebook_image)
    options = {"docker_config": str(docker_config)} if docker_config else {}
    if store is not None:
        options["store"] = str(store)
    args = ["--build-timeout", "1500", "--max-image-size", "4G", *extra_args]
    config = (
        docker_notebook_config(base, homes)
        + f"""
from mesosspawner.images.service.hubconfig import register_images_service
register_images_service(
    c,
    registry={registry!r},
    bases={bases or {"base-notebook": notebook_image}!r},
    port={free_port()},
    extra_args={args!r},
    **{options!r},
)
"""
        + extra
    )
    hub = hub_factory(mesos_config(cluster.url, homes, config), start_timeout=240)
    await hub.launch()
    return hub


async def service(
    hub: Hub, user: str, method: str = "GET", path: str = "", body: Any = None, timeout=60
) -> tuple[int, Any]:
    """Call the images service through the proxy with a token *user* owns."""
    token = await hub.user_token(user)
    headers = {"Authorization": f"token {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    code, raw, _ = await hub._http.fetch(
        hub.url + PREFIX + path, method=method, body=data, headers=headers, timeout=timeout
    )
    try:
        return code, json.loads(raw) if raw else None
    except ValueError:
        return code, raw.decode(errors="replace")


async def wait_service(hub: Hub, user: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            code, last = await service(hub, user, path="api/builds")
            if code == 200:
                return
        except ConnectionError as exc:
            last = exc
        await asyncio.sleep(0.5)
    raise hub.fail(f"images service not answering after {timeout}s: {last}")


async def wait_build(hub: Hub, user: str, build_id: str, timeout: float = 1500) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, body = await service(hub, user, path=f"api/builds/{build_id}")
        assert code == 200, body
        if body["build"]["status"] in ("done", "reused", "failed"):
            return body["build"]
        await asyncio.sleep(1)
    raise hub.fail(f"build {build_id} not finished after {timeout}s")
