"""The agent ↔ master protocol for agents outside the master's process (localmesos's own design).

Both ends live here.

Master side (routes added to the master's HTTP server):

``POST /localmesos/agent/subscribe`` with JSON
``{"hostname", "port", "resources": [Resource JSON], "attributes": [Attribute JSON],
"agent_id"?, "tasks": [{"framework_id", "task_info", "state", "statuses", "role"}],
"frameworks": [FrameworkInfo]}``. ``agent_id`` and ``tasks`` are present when the agent
re-registers (after a master failover or a lost connection); the master then adopts the running
tasks. Answer: 200, chunked RecordIO of JSON commands, first
``{"type": "REGISTERED", "agent_id": ..., "master_info": ...}``, then ``LAUNCH {framework, task}``,
``KILL {framework_id, task_id, grace}``, ``ACKNOWLEDGE {framework_id, task_id, uuid}``,
``SHUTDOWN_FRAMEWORK {framework_id}`` and ``PING`` every few seconds. The stream closing is the
master's signal that the agent is gone (it is marked unreachable after the timeout). A
non-leading master answers 307 like the scheduler endpoint.

``POST /localmesos/agent/update`` with ``{"agent_id", "framework_id", "status", "latest_state"}``
→ 202; 409 when the master does not know the agent (it must re-register).

Agent side: ``AgentSession`` follows the leading master (a static URL or ``zk://``), keeps the
subscribe stream open, re-registers with its tasks whenever the stream breaks, and posts status
updates (which the agent resends until acknowledged).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import replace

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.iostream import IOStream, StreamClosedError

from mesosspawner.mesos.http import (
    MesosError,
    RecordStream,
    Redirect,
    Target,
    open_stream,
    subscribe,
)
from mesosspawner.mesos.recordio import encode
from mesosspawner.mesos.resources import (
    attribute_from_json,
    attribute_to_json,
    resource_from_json,
    resource_to_json,
)

from .agent import LocalAgent
from .handlers import BaseHandler

log = logging.getLogger("mesosspawner.localmesos.remote_agent")

PING_INTERVAL = 5.0
CONNECT_TIMEOUT = 10.0
SUBSCRIBE_PATH = "/localmesos/agent/subscribe"


# ------------------------------------------------------------------------------- master side


class RemoteAgentLink:
    """The master's view of a remote agent: commands written to its subscribe stream."""

    def __init__(self, handler: AgentSubscribeHandler) -> None:
        self.handler = handler
        self.closed = False

    def _send(self, command: dict) -> None:
        if self.closed:
            return
        try:
            self.handler.write(encode(json.dumps(command).encode()))
            self.handler.flush().add_done_callback(lambda f: f.cancelled() or f.exception())
        except Exception:  # noqa: BLE001 - a dead connection is noticed by on_connection_close
            self.closed = True

    def launch(self, framework: dict, task: dict) -> None:
        self._send({"type": "LAUNCH", "framework": framework, "task": task})

    def kill(self, framework_id: str, task_id: str, grace: float) -> None:
        self._send(
            {"type": "KILL", "framework_id": framework_id, "task_id": task_id, "grace": grace}
        )

    def acknowledge(self, framework_id: str, task_id: str, uuid: str) -> None:
        self._send(
            {"type": "ACKNOWLEDGE", "framework_id": framework_id, "task_id": task_id, "uuid": uuid}
        )

    def shutdown_framework(self, framework_id: str) -> None:
        self._send({"type": "SHUTDOWN_FRAMEWORK", "framework_id": framework_id})


class AgentSubscribeHandler(BaseHandler):
    async def post(self) -> None:
        master = self.leading_master()
        if master is None:
            return
        try:
            body = json.loads(self.request.body)
            hostname = str(body["hostname"])
            resources = [resource_from_json(r) for r in body.get("resources") or []]
            attributes = [attribute_from_json(a) for a in body.get("attributes") or []]
        except (ValueError, KeyError, TypeError) as e:
            return self.error_text(400, f"bad agent registration: {e}")
        self.link = RemoteAgentLink(self)
        self.done = asyncio.get_running_loop().create_future()
        agent_id = master.register_agent(
            hostname,
            resources,
            attributes,
            self.link,
            port=int(body.get("port") or 5051),
            agent_id=body.get("agent_id"),
            tasks=body.get("tasks") or [],
            frameworks=body.get("frameworks") or [],
            ip=self.request.remote_ip or "127.0.0.1",
        )
        self.set_status(200)
        self.set_header("Content-Type", "application/json")
        self.link._send(
            {"type": "REGISTERED", "agent_id": agent_id, "master_info": master.master_info()}
        )
        pinger = asyncio.get_running_loop().create_task(self._ping())
        try:
            await self.done
        finally:
            pinger.cancel()
            self.link.closed = True
            if (
                master.agents.get(agent_id) is not None
                and master.agents[agent_id].link is self.link
            ):
                master.agent_disconnected(agent_id)
        with contextlib.suppress(Exception):
            self.finish()

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(PING_INTERVAL)
            self.link._send({"type": "PING"})

    def on_connection_close(self) -> None:
        done = getattr(self, "done", None)
        if done is not None and not done.done():
            done.set_result(None)


class AgentUpdateHandler(BaseHandler):
    def post(self) -> None:
        master = self.leading_master()
        if master is None:
            return
        try:
            body = json.loads(self.request.body)
            agent_id = str(body["agent_id"])
            fid = str(body["framework_id"])
            status = dict(body["status"])
        except (ValueError, KeyError, TypeError) as e:
            return self.error_text(400, f"bad status update: {e}")
        agent = master.agents.get(agent_id)
        if agent is None or not agent.connected:
            return self.error_text(409, f"agent {agent_id} is not registered")
        master.agent_status_update(agent_id, fid, status, body.get("latest_state"))
        self.set_status(202)
        self.finish()


def agent_routes(leadership) -> list:
    kw = {"leadership": leadership}
    return [
        (SUBSCRIBE_PATH, AgentSubscribeHandler, kw),
        (r"/localmesos/agent/update", AgentUpdateHandler, kw),
    ]


# ------------------------------------------------------------------------------- agent side


class HttpMasterLink:
    """Status updates to the master over HTTP; failures are left to the agent's retries."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.client = AsyncHTTPClient()

    def status_update(
        self, agent_id: str, framework_id: str, status: dict, latest_state: str
    ) -> None:
        body = json.dumps(
            {
                "agent_id": agent_id,
                "framework_id": framework_id,
                "status": status,
                "latest_state": latest_state,
            }
        )
        request = HTTPRequest(
            f"{self.base_url}/localmesos/agent/update",
            method="POST",
            body=body,
            headers={"Content-Type": "application/json"},
            request_timeout=10,
        )
        fut = asyncio.ensure_future(self.client.fetch(request, raise_error=False))
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())


class AgentSession:
    """Keeps one agent registered with the leading master, re-registering after failures."""

    def __init__(self, agent: LocalAgent, master: str, retry_delay: float = 0.5) -> None:
        self.agent = agent
        self.master = master
        self.retry_delay = retry_delay
        self._task: asyncio.Task | None = None
        self._stream: IOStream | None = None
        self._watch = None
        self.registered = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._stream is not None:
            self._stream.close()
        if self._watch is not None:
            await self._watch.stop()

    async def _leader_url(self) -> str:
        if not self.master.startswith("zk://"):
            return self.master.rstrip("/")
        if self._watch is None:
            from .zk import LeaderWatch

            self._watch = LeaderWatch(self.master)
            await self._watch.start()
        info = await self._watch.wait_leader()
        address = info.get("address") or {}
        host = address.get("ip") or address.get("hostname") or info.get("hostname")
        return f"http://{host}:{address.get('port') or info.get('port')}"

    async def _run(self) -> None:
        while True:
            try:
                url = await self._leader_url()
                await self._session(url)
            except asyncio.CancelledError:
                raise
            except (
                OSError,
                ConnectionError,
                ValueError,
                HTTPClientError,
                EOFError,
                MesosError,
            ) as e:
                log.info("agent %s: master connection lost (%s)", self.agent.hostname, e)
            except Exception:  # noqa: BLE001 - keep the agent alive whatever the master did
                log.exception("agent %s: session failed", self.agent.hostname)
            self.agent.disconnected()
            self.registered.clear()
            await asyncio.sleep(self.retry_delay)

    def _registration(self) -> dict:
        a = self.agent
        return {
            "hostname": a.hostname,
            "port": a.port,
            "resources": [resource_to_json(r) for r in a.resources],
            "attributes": [attribute_to_json(x) for x in a.attributes],
            "agent_id": a.agent_id,
            "tasks": a.reregistration_tasks(),
            "frameworks": list(a.frameworks.values()),
        }

    async def _session(self, url: str) -> None:
        target = Target.parse(url)
        for _ in range(5):  # follow 307s to the leader
            stream = await open_stream(target, None, CONNECT_TIMEOUT)
            self._stream = stream
            try:
                body = json.dumps(self._registration()).encode()
                try:
                    _headers, records = await subscribe(stream, target, body, b"", SUBSCRIBE_PATH)
                except Redirect as r:
                    leader = target.redirect(r.location)
                    # The Location names the agent endpoint itself: keep the master's address.
                    target = replace(leader, prefix=leader.prefix.removesuffix(SUBSCRIBE_PATH))
                    continue
                await self._consume(stream, records, target.url)
                return
            finally:
                stream.close()
        raise ConnectionError(f"too many redirects from {url}")

    async def _consume(self, stream: IOStream, records: RecordStream, url: str) -> None:
        while not records.done:
            try:
                data = await stream.read_bytes(65536, partial=True)
            except StreamClosedError:
                raise EOFError("master closed the stream") from None
            for record in records.feed(data):
                self._command(json.loads(record), url)
        raise EOFError("master ended the stream")

    def _command(self, cmd: dict, url: str) -> None:
        kind = cmd.get("type")
        a = self.agent
        if kind == "REGISTERED":
            a.registered(cmd["agent_id"], HttpMasterLink(url))
            self.registered.set()
        elif kind == "LAUNCH":
            a.launch(cmd["framework"], cmd["task"])
        elif kind == "KILL":
            a.kill(cmd["framework_id"], cmd["task_id"], float(cmd.get("grace", 3.0)))
        elif kind == "ACKNOWLEDGE":
            a.acknowledge(cmd["framework_id"], cmd["task_id"], cmd["uuid"])
        elif kind == "SHUTDOWN_FRAMEWORK":
            a.shutdown_framework(cmd["framework_id"])
