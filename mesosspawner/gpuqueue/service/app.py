"""The GPU queue service: waiting and running GPU sessions per group, with shares and usage.

Thin: the hub's ``GpuQueue`` writes ``live`` (a plain JSON snapshot) into its state file on
every look at the queue; this service reads it per request and renders it (``/``) or serves it
as JSON (``/api/queue``). Who may open it is the hub's decision: the service's access scope,
which admins have (grant a role ``access:services!service=gpu-queue`` to others).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import jinja2
from jupyterhub.services.auth import HubOAuthenticated
from tornado import web

from ...hub_service import hub_oauth_app, serve_app
from ..culling import duration
from ..eta import wait_words

log = logging.getLogger("mesosspawner.gpuqueue.service")


@dataclass(frozen=True)
class ServiceConfig:
    state_file: str
    prefix: str = "/services/gpu-queue/"
    refresh_seconds: int = 5


def read_live(path: str) -> dict:
    """The hub's latest snapshot of the queue ({} before the hub wrote one)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise web.HTTPError(503, f"the GPU queue state {path} cannot be read: {e}") from None
    return data.get("live") or {}


def page_model(live: dict, now: float) -> dict:
    """The snapshot with words for people: ages, waits, deadlines."""
    groups = live.get("groups") or []
    total_share = sum(g.get("share") or 0 for g in groups) or 1.0
    total_usage = sum(g.get("usage_gpu_hours") or 0 for g in groups)
    out_groups = []
    for g in groups:
        share = (g.get("share") or 0) / total_share
        used = (g.get("usage_gpu_hours") or 0) / total_usage if total_usage else 0.0
        out_groups.append(
            {
                **g,
                "share_part": share,
                "usage_part": used,
                "waiting_rows": [w for w in live.get("waiting", []) if w["group"] == g["name"]],
                "running_rows": [r for r in live.get("running", []) if r["group"] == g["name"]],
            }
        )
    for w in live.get("waiting", []):
        w["waited"] = duration(max(0.0, now - w["since"]))
        w["eta"] = "unknown" if w.get("eta_seconds") is None else wait_words(w["eta_seconds"])
    for r in live.get("running", []):
        r["age"] = duration(max(0.0, now - r["started"]))
        r["idle"] = duration(max(0.0, now - r["last_activity"]))
        d = r.get("deadline")
        r["deadline_words"] = f"{d['kind']} in {duration(max(0.0, d['at'] - now))}" if d else "none"
    updated = live.get("updated")
    return {
        "groups": out_groups,
        "capacity": live.get("capacity"),
        "half_life": live.get("half_life_hours"),
        "order": live.get("order"),
        "borrowing": live.get("borrowing"),
        "waiting": live.get("waiting", []),
        "running": live.get("running", []),
        "updated": "never" if updated is None else f"{duration(max(0.0, now - updated))} ago",
        "known": bool(live),
    }


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    @property
    def config(self) -> ServiceConfig:
        return self.settings["gpu_queue_config"]

    def write_error(self, status_code: int, **kwargs) -> None:
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"status": status_code, "message": message}))


class IndexHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        live = await asyncio.to_thread(read_live, self.config.state_file)
        env: jinja2.Environment = self.settings["jinja_env"]
        self.finish(
            env.get_template("gpu_queue_service.html").render(
                user=self.current_user["name"],
                prefix=self.config.prefix,
                refresh_seconds=self.config.refresh_seconds,
                **page_model(live, time.time()),
            )
        )


class QueueAPIHandler(BaseHandler):
    @web.authenticated
    async def get(self) -> None:
        live = await asyncio.to_thread(read_live, self.config.state_file)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(live))


def make_app(config: ServiceConfig) -> web.Application:
    return hub_oauth_app(
        config.prefix, IndexHandler, [("api/queue", QueueAPIHandler)], gpu_queue_config=config
    )


def serve(config: ServiceConfig, bind_url: str) -> None:
    """Listen on ``bind_url`` (JUPYTERHUB_SERVICE_URL) until stopped."""
    about = f"{config.prefix}, reading {config.state_file}"
    serve_app(make_app(config), bind_url, "gpu-queue", about)
