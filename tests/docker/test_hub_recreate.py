"""Re-creating the hub container (an upgrade) keeps its database, cookie secret and Mesos
framework id (issue 10 item 7), done with the docker SDK as compose would: the hub image, a
named volume at /srv/jupyterhub/data, the configuration mounted read-only, host networking to
reach a localmesos master."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from pathlib import Path

import pytest
import requests

from mesosspawner.images import lab as images
from mesosspawner.localmesos.config import from_dict
from mesosspawner.localmesos.testing import running_cluster
from tests.services.net import free_port

pytestmark = pytest.mark.docker

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"
NO_GPUS = {"agent": [{"hostname": "cpu-1", "resources": "cpus:1;mem:1024;ports:[33900-33909]"}]}


def hub_config(master: str, port: int, hub_port: int, proxy_api: int, token: str) -> str:
    # A GPU spawn on a cluster without GPUs fails at once, but only after the framework has
    # subscribed and persisted its id: no notebook has to run for the test.
    return f"""
c.JupyterHub.spawner_class = "mesos"
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"
c.JupyterHub.services = [{{"name": "e2e-admin", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "admin", "services": ["e2e-admin"]}}]
c.MesosSpawner.mesos_master = {master!r}
c.MesosSpawner.gpus = 1
"""


def _wait_api(url: str, container, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/hub/api/", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        container.reload()
        if container.status == "exited":
            break
        time.sleep(0.5)
    raise AssertionError(f"hub did not answer: {container.logs()[-3000:].decode()}")


def _frameworks(master: str) -> dict[str, bool]:
    state = requests.get(f"{master}/master/state", timeout=5).json()
    return {f["id"]: f["active"] for f in state["frameworks"]}


def _run_hub(client, image: str, volume: str, config: Path):
    return client.containers.run(
        image,
        detach=True,
        network_mode="host",
        volumes={
            volume: {"bind": "/srv/jupyterhub/data", "mode": "rw"},
            str(config): {"bind": "/srv/jupyterhub/jupyterhub_config.py", "mode": "ro"},
        },
    )


async def _subscribe_through_a_spawn(url: str, token: str, master: str) -> str:
    headers = {"Authorization": f"token {token}"}

    def spawn() -> None:
        requests.post(f"{url}/hub/api/users/alice", headers=headers, timeout=10)
        requests.post(f"{url}/hub/api/users/alice/server", headers=headers, timeout=30)

    await asyncio.to_thread(spawn)
    # Never block the loop: the in-process master runs on it.
    for _ in range(100):
        frameworks = await asyncio.to_thread(_frameworks, master)
        active = [fid for fid, on in frameworks.items() if on]
        if active:
            return active[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no active framework: {frameworks}")


async def test_recreated_hub_container_keeps_database_cookie_secret_and_framework(
    docker_client, base_image, tmp_path
):
    built = await asyncio.to_thread(
        images.build_and_push,
        docker_client,
        DOCKER_DIR,
        None,
        only=["hub"],
        build_args={"BASE_IMAGE": base_image},
    )
    image = built["hub"].ref
    volume = f"mesosspawner-hub-data-{uuid.uuid4().hex[:8]}"
    docker_client.volumes.create(volume)
    token = secrets.token_hex(16)
    containers = []
    async with running_cluster(from_dict(NO_GPUS, "t"), str(tmp_path / "mesos")) as cluster:
        port, hub_port, proxy_api = free_port(), free_port(), free_port()
        config = tmp_path / "jupyterhub_config.py"
        config.write_text(hub_config(cluster.url, port, hub_port, proxy_api, token))
        config.chmod(0o644)
        url = f"http://127.0.0.1:{port}"
        try:
            first = await asyncio.to_thread(_run_hub, docker_client, image, volume, config)
            containers.append(first)
            await asyncio.to_thread(_wait_api, url, first)
            framework_id = await _subscribe_through_a_spawn(url, token, cluster.url)
            code, secret = await asyncio.to_thread(first.exec_run, "cat jupyterhub_cookie_secret")
            assert code == 0, secret
            await asyncio.to_thread(first.remove, force=True)

            second = await asyncio.to_thread(_run_hub, docker_client, image, volume, config)
            containers.append(second)
            await asyncio.to_thread(_wait_api, url, second)
            headers = {"Authorization": f"token {token}"}
            user = await asyncio.to_thread(
                requests.get, f"{url}/hub/api/users/alice", headers=headers, timeout=10
            )
            assert user.status_code == 200, "the hub database was lost"
            code, kept = await asyncio.to_thread(second.exec_run, "cat jupyterhub_cookie_secret")
            assert kept == secret
            again = await _subscribe_through_a_spawn(url, token, cluster.url)
            assert again == framework_id
            frameworks = await asyncio.to_thread(_frameworks, cluster.url)
            assert list(frameworks) == [framework_id]  # no second framework
        finally:
            for container in containers:
                try:
                    container.remove(force=True)
                except Exception:  # noqa: BLE001 - already removed
                    pass
            docker_client.volumes.get(volume).remove(force=True)
