"""Add the GPU queue's faces to a hub, in ``jupyterhub_config.py``::

    from mesosspawner.gpuqueue.service.hubconfig import register_gpu_queue_service
    register_gpu_queue_service(c)

Adds the managed service (its page at ``/services/gpu-queue/``, for admins: they hold the
``access:services`` scope) and ``show_gpu_notices``: each person's GPU notices (a server
about to be culled) at the top of every hub page they open, through
``c.JupyterHub.template_vars``.
"""

from __future__ import annotations

import os
import sys

from ..traits import state_file_beside


def _framework_id_file(c) -> str:
    """The framework id file as ``FrameworkTraits`` computes it from this config."""
    configured = c.MesosSpawner.get("framework_id_file")
    if isinstance(configured, str) and configured:
        return configured
    db_url = c.JupyterHub.get("db_url") or ""
    base = "."
    if isinstance(db_url, str) and db_url.startswith("sqlite:///"):
        base = os.path.dirname(db_url[len("sqlite:///") :]) or "."
    return os.path.join(base, "mesosspawner-framework.json")


def state_file_of(c) -> str:
    """Where the hub's GPU queue keeps its state, as the spawner computes it."""
    configured = c.MesosSpawner.get("gpu_queue_state_file")
    if isinstance(configured, str) and configured:
        return configured
    return state_file_beside(_framework_id_file(c))


def register_gpu_queue_service(
    c, *, name: str = "gpu-queue", port: int = 10102, notices: bool = True
) -> dict:
    """Add the service (and, with ``notices``, the person's GPU notices) to hub config ``c``;
    returns the service entry."""
    state_file = os.path.abspath(state_file_of(c))
    env = {k: os.environ[k] for k in ("PATH", "PYTHONPATH") if k in os.environ}
    service = {
        "name": name,
        "url": f"http://127.0.0.1:{port}",
        "command": [
            sys.executable,
            "-m",
            "mesosspawner.gpuqueue.service",
            "--state-file",
            state_file,
        ],
        "environment": env,
        "oauth_no_confirm": True,
        "display": True,
    }
    current = c.JupyterHub.get("services")
    c.JupyterHub.services = [*(current if isinstance(current, list | tuple) else []), service]
    if notices:
        show_gpu_notices(c)
    return service


def show_gpu_notices(c) -> None:
    """Put each person's GPU notices at the top of the hub's pages (after the admin's own
    ``announcement``, kept)."""
    from ..notices import announcement

    template_vars = dict(c.JupyterHub.get("template_vars") or {})
    template_vars["announcement"] = announcement(template_vars.get("announcement"))
    c.JupyterHub.template_vars = template_vars
