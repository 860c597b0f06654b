"""The compose hub keeps its state on the mounted volume (issue 10 item 7): the sqlite database,
the cookie secret and the Mesos framework id. In the container's own layer they vanish when the
hub container is re-created (an upgrade): a new framework id turns every running notebook into
a four-week orphan, and everyone is logged out."""

from __future__ import annotations

import posixpath
from pathlib import Path
from types import SimpleNamespace

import yaml

from mesosspawner import MesosSpawner

DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"


def _image_workdir() -> str:
    workdir = "/"
    for line in (DOCKER_DIR / "hub" / "Dockerfile").read_text().splitlines():
        if line.strip().upper().startswith("WORKDIR "):
            workdir = posixpath.join(workdir, line.split(None, 1)[1].strip())
    return workdir


def _writable_mounts(service: dict) -> list[str]:
    out = []
    for volume in service.get("volumes", []):
        parts = volume.split(":") if isinstance(volume, str) else [volume["target"]]
        target = parts[1] if len(parts) > 1 else parts[0]
        if not (len(parts) > 2 and parts[2] == "ro"):
            out.append(target)
    return out


def test_hub_database_cookie_secret_and_framework_id_live_on_the_volume():
    hub = yaml.safe_load((DOCKER_DIR / "compose.yml").read_text())["services"]["hub"]
    # The image alone (docker run with the volume) and the compose service must agree.
    workdirs = {_image_workdir(), hub.get("working_dir") or _image_workdir()}
    # JupyterHub's defaults (and the example config's db_url) are relative to the working
    # directory; the spawner keeps the framework id next to the database.
    spawner = MesosSpawner(
        user=SimpleNamespace(name="x", id=1, groups=[], url="/user/x/"),
        mesos_master="http://127.0.0.1:1",
    )
    spawner.config.JupyterHub.db_url = "sqlite:///jupyterhub.sqlite"
    files = {
        "database": "jupyterhub.sqlite",
        "cookie secret": "jupyterhub_cookie_secret",
        "framework id": spawner._default_id_file(),
    }
    mounts = _writable_mounts(hub)
    for (what, path), cwd in ((f, w) for f in files.items() for w in workdirs):
        where = posixpath.normpath(posixpath.join(cwd, path))
        assert any(where.startswith(m.rstrip("/") + "/") for m in mounts), (
            f"the hub's {what} would be {where}, inside the container (volumes: {mounts})"
        )
