"""Tornado handlers for the master's public endpoints, as real Mesos 1.11 serves them.

``POST /api/v1/scheduler`` (SUBSCRIBE stream in RecordIO, other calls 202), ``GET /version``,
``GET /master/state`` (and ``/state``), ``GET /master/slaves``, ``GET /master/flags``,
``GET /health``,
``/master/redirect``, and ``GET /``: a small HTML status page where a real master has its web
UI. Status codes follow Mesos's ``src/master/http.cpp``: 307 to the leader, 503 with no
leader, 405, 415, 400, 403.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid as uuidlib
from typing import Protocol
from urllib.parse import parse_qs

from tornado import web
from tornado.iostream import StreamClosedError

from mesosspawner.mesos.recordio import encode

from . import operations, operator_api
from .maintenance import MaintenanceError
from .master import CallError, Master
from .model import VERSION
from .quota import roles_json
from .state_json import slaves_state
from .status_page import render as render_status_page
from .validation import validate_call

log = logging.getLogger("mesosspawner.localmesos.handlers")


class Leadership(Protocol):
    """What the handlers need to know about this master process's place in the cluster."""

    master: Master | None  # set while this process leads

    def leader_address(self) -> tuple[str, int] | None: ...

    def flags(self) -> dict[str, str]: ...


class HttpStream:
    """A SUBSCRIBE connection: RecordIO events out, heartbeats, closed once."""

    def __init__(self, handler: web.RequestHandler, heartbeat_interval: float) -> None:
        self.handler = handler
        self.done = asyncio.get_running_loop().create_future()
        self.closed = False
        self._hb = asyncio.get_running_loop().create_task(self._heartbeats(heartbeat_interval))

    def send(self, event: dict) -> None:
        if self.closed:
            return
        try:
            self.handler.write(encode(json.dumps(event, separators=(",", ":")).encode()))
            fut = self.handler.flush()
            fut.add_done_callback(_ignore_stream_closed)
        except StreamClosedError:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._hb.cancel()
        if not self.done.done():
            self.done.set_result(None)

    async def _heartbeats(self, interval: float) -> None:
        # Like Mesos's Heartbeater: one right after SUBSCRIBED, then every interval.
        await asyncio.sleep(0)
        while True:
            self.send({"type": "HEARTBEAT"})
            await asyncio.sleep(interval)


def _ignore_stream_closed(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()


def _accepts_json(accept: str | None) -> bool:
    if accept is None:
        return True
    types = [_media_type(part) for part in accept.split(",")]
    return any(t in ("application/json", "application/*", "*/*") for t in types)


def _media_type(value: str | None) -> str | None:
    if value is None:
        return None
    return value.split(";")[0].strip().lower()


class BaseHandler(web.RequestHandler):
    def initialize(self, leadership: Leadership) -> None:
        self.leadership = leadership

    def set_default_headers(self) -> None:
        self.clear_header("Server")

    def error_text(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(message)

    def leading_master(self) -> Master | None:
        """The master when this process leads; otherwise answer 307 / 503 and return None."""
        master = self.leadership.master
        if master is not None:
            return master
        if getattr(self.leadership, "recovering", False):
            self.error_text(503, "Master has not finished recovery")
            return None
        address = self.leadership.leader_address()
        if address is None:
            self.error_text(503, "No leader elected")
            return None
        host, port = address
        self.set_status(307)
        self.set_header("Location", f"//{host}:{port}{self.request.path}")
        self.finish()
        return None

    def write_json(self, data: object) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, separators=(",", ":")))


class SchedulerHandler(BaseHandler):
    SUPPORTED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

    def initialize(self, leadership: Leadership) -> None:
        super().initialize(leadership)
        self.stream: HttpStream | None = None
        self.framework_id: str | None = None

    async def _not_post(self) -> None:
        # Mesos redirects (or answers 503) before it looks at the method.
        if self.leading_master() is None:
            return
        self.set_header("Allow", "POST")
        self.error_text(405, f"Expecting 'POST', received '{self.request.method}'")

    get = put = delete = patch = head = options = _not_post

    async def post(self) -> None:
        master = self.leading_master()
        if master is None:
            return
        ctype = _media_type(self.request.headers.get("Content-Type"))
        if ctype is None:
            return self.error_text(400, "Expecting 'Content-Type' to be present")
        if ctype != "application/json":
            return self.error_text(
                415,
                f"Expecting 'Content-Type' of application/json, received '{ctype}' "
                "(localmesos speaks JSON only)",
            )
        try:
            call = json.loads(self.request.body or b"")
        except ValueError as e:
            return self.error_text(400, f"Failed to parse body into JSON: {e}")
        if not isinstance(call, dict):
            return self.error_text(400, "Failed to convert JSON into Call protobuf: not an object")
        error = validate_call(call)
        if error is not None:
            return self.error_text(400, error)
        if call["type"] == "SUBSCRIBE":
            if not _accepts_json(self.request.headers.get("Accept")):
                return self.error_text(
                    406, "Expecting 'Accept' to allow 'application/json' (localmesos speaks JSON)"
                )
            if "Mesos-Stream-Id" in self.request.headers:
                return self.error_text(
                    400, "Subscribe calls should not include the 'Mesos-Stream-Id' header"
                )
            return await self._subscribe(master, call)
        try:
            fw = master.framework_for_call(call, self.request.headers.get("Mesos-Stream-Id"))
            master.handle_call(fw, call)
        except CallError as e:
            return self.error_text(e.status, e.message)
        except Exception as e:  # noqa: BLE001 - a malformed body must not break the master
            log.exception("call %s failed", call.get("type"))
            return self.error_text(400, f"Failed to validate scheduler::Call: {e}")
        # Mesos answers UPDATE_FRAMEWORK with 200 OK, every other call with 202 Accepted.
        self.set_status(200 if call.get("type") == "UPDATE_FRAMEWORK" else 202)
        self.finish()

    async def _subscribe(self, master: Master, call: dict) -> None:
        stream_id = str(uuidlib.uuid4())
        self.set_status(200)
        self.set_header("Content-Type", "application/json")
        self.set_header("Mesos-Stream-Id", stream_id)
        self.set_header("Cache-Control", "no-cache")
        self.stream = HttpStream(self, master.heartbeat_interval)
        fw = master.subscribe(call, self.stream, stream_id)
        if fw is not None:
            self.framework_id = fw.id
        try:
            await self.stream.done
        finally:
            self.stream.close()
            if self.framework_id is not None:
                master.stream_closed(self.framework_id, self.stream)
        if not self._finished:
            try:
                self.finish()
            except StreamClosedError:
                pass

    def on_connection_close(self) -> None:
        if self.stream is not None:
            self.stream.close()


class VersionHandler(BaseHandler):
    def get(self) -> None:
        self.write_json(
            {
                "version": VERSION,
                "build_date": "",
                "build_time": 0,
                "build_user": "localmesos",
                "git_sha": "localmesos",
                "git_tag": VERSION,
            }
        )


class StateHandler(BaseHandler):
    def get(self) -> None:
        master = self.leading_master()
        if master is None:
            return
        self.write_json(master.state_json())


class SlavesHandler(BaseHandler):
    """``/master/slaves``: the agents of state.json, as real Mesos lists them."""

    def get(self) -> None:
        master = self.leading_master()
        if master is None:
            return
        self.write_json(slaves_state(master))


class StatusPageHandler(BaseHandler):
    """``/``: agents, frameworks and tasks for a person (a real master serves its web UI)."""

    def get(self) -> None:
        master = self.leading_master()
        if master is None:
            return
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
        self.finish(render_status_page(master.state_json()))


class OperatorReservationHandler(BaseHandler):
    """``/master/reserve`` and ``/master/unreserve``: dynamic reservations by the operator,
    form-encoded as on Mesos (``curl -d slaveId=... -d resources='[...]'``)."""

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

    def initialize(self, leadership: Leadership, action: str) -> None:
        super().initialize(leadership)
        self.action = action

    def _not_post(self) -> None:
        if self.leading_master() is None:
            return
        self.error_text(
            405,
            "405 Method Not Allowed. Expecting one of { 'POST' },"
            f" but received '{self.request.method}'.",
        )

    get = put = delete = patch = head = options = _not_post

    def post(self) -> None:
        master = self.leading_master()
        if master is None:
            return
        values = parse_qs((self.request.body or b"").decode("utf-8", "replace"))
        try:
            agent_id, resources = operations.parse_form(values)
            getattr(operations, self.action)(master, agent_id, resources)
        except operations.OperationError as e:
            return self.error_text(e.status, e.message)
        self.set_status(202)
        self.finish()


class FlagsHandler(BaseHandler):
    """``/master/flags`` (and ``/flags``): this master's flags as real Mesos names them, every
    value a string (``{"flags": {"authenticate_frameworks": "false", ...}}``). Like a real
    master, any master answers with its own, leading or not. localmesos authenticates nothing,
    and its flags say so: what a hub's start check reads (mesosspawner/cluster_check.py)."""

    def get(self) -> None:
        self.write_json({"flags": self.leadership.flags()})


class OperatorApiHandler(BaseHandler):
    """``POST /api/v1``: the operator API calls localmesos has (``operator_api``)."""

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

    def _not_post(self) -> None:
        if self.leading_master() is None:
            return
        self.error_text(
            405,
            "405 Method Not Allowed. Expecting one of { 'POST' },"
            f" but received '{self.request.method}'.",
        )

    get = put = delete = patch = head = options = _not_post

    def post(self) -> None:
        master = self.leading_master()
        if master is None:
            return
        ctype = _media_type(self.request.headers.get("Content-Type"))
        if ctype != "application/json":
            return self.error_text(
                415, "Expecting 'Content-Type' of application/json (localmesos speaks JSON)"
            )
        try:
            body = json.loads(self.request.body or b"")
        except ValueError as e:
            return self.error_text(400, f"Failed to parse body into JSON: {e}")
        status, answer = operator_api.call(master, body)
        if isinstance(answer, dict):
            self.set_status(status)
            return self.write_json(answer)
        if answer:
            return self.error_text(status, answer)
        self.set_status(status)
        self.finish()


class MaintenanceHandler(BaseHandler):
    """``/master/maintenance/schedule`` (GET, POST a schedule) and ``/master/maintenance/status``
    (GET), the HTTP endpoints docs/maintenance.md shows with curl."""

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")

    def initialize(self, leadership: Leadership, what: str) -> None:
        super().initialize(leadership)
        self.what = what

    def _not_allowed(self) -> None:
        if self.leading_master() is None:
            return
        allowed = "'GET', 'POST'" if self.what == "schedule" else "'GET'"
        self.error_text(
            405,
            f"405 Method Not Allowed. Expecting one of {{ {allowed} }},"
            f" but received '{self.request.method}'.",
        )

    put = delete = patch = head = options = _not_allowed

    def get(self) -> None:
        master = self.leading_master()
        if master is None:
            return
        maintenance = master.maintenance
        self.write_json(
            maintenance.schedule if self.what == "schedule" else maintenance.status_json()
        )

    def post(self) -> None:
        if self.what != "schedule":
            return self._not_allowed()
        master = self.leading_master()
        if master is None:
            return
        try:
            schedule = json.loads(self.request.body or b"")
            master.maintenance.update_schedule(schedule)
        except ValueError as e:
            return self.error_text(400, f"Failed to parse the schedule: {e}")
        except MaintenanceError as e:
            return self.error_text(e.status, e.message)
        self.set_status(200)
        self.finish()


class QuotaHandler(BaseHandler):
    """``GET /quota``: every role's quota (a ``QuotaStatus``); ``GET /roles``: roles with their
    quota consumption. Setting quota is ``UPDATE_QUOTA`` on ``/api/v1``."""

    def initialize(self, leadership: Leadership, what: str) -> None:
        super().initialize(leadership)
        self.what = what

    def get(self) -> None:
        master = self.leading_master()
        if master is None:
            return
        if self.what == "roles":
            return self.write_json(roles_json(master))
        self.write_json(master.allocator.quotas.status_json())


class HealthHandler(BaseHandler):
    def get(self) -> None:
        self.set_status(200)
        self.finish()

    head = get


class RedirectHandler(BaseHandler):
    def get(self) -> None:
        master = self.leadership.master
        if master is not None:
            address: tuple[str, int] | None = (master.hostname, master.port)
        else:
            address = self.leadership.leader_address()
        if address is None:
            return self.error_text(503, "No leader elected")
        self.set_status(307)
        self.set_header("Location", f"//{address[0]}:{address[1]}")
        self.finish()


def routes(leadership: Leadership) -> list:
    kw = {"leadership": leadership}
    return [
        (r"/", StatusPageHandler, kw),
        (r"/api/v1/scheduler", SchedulerHandler, kw),
        (r"/master/api/v1/scheduler", SchedulerHandler, kw),
        (r"/version", VersionHandler, kw),
        # No /master/state.json: Mesos 1.x answers 404 there.
        (r"/(?:master/)?state", StateHandler, kw),
        (r"/(?:master/)?slaves", SlavesHandler, kw),
        (r"/(?:master/)?health", HealthHandler, kw),
        (r"/(?:master/)?flags", FlagsHandler, kw),
        (r"/master/reserve", OperatorReservationHandler, {**kw, "action": "reserve"}),
        (r"/master/unreserve", OperatorReservationHandler, {**kw, "action": "unreserve"}),
        (r"/(?:master/)?redirect", RedirectHandler, kw),
        (r"/(?:master/)?api/v1", OperatorApiHandler, kw),
        (r"/master/maintenance/schedule", MaintenanceHandler, {**kw, "what": "schedule"}),
        (r"/master/maintenance/status", MaintenanceHandler, {**kw, "what": "status"}),
        (r"/(?:master/)?quota", QuotaHandler, {**kw, "what": "quota"}),
        (r"/(?:master/)?roles", QuotaHandler, {**kw, "what": "roles"}),
    ]
