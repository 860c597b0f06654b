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
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from mesosspawner.mesos.recordio import Decoder, encode
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
        (r"/localmesos/agent/subscribe", AgentSubscribeHandler, kw),
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
        self._writer: asyncio.StreamWriter | None = None
        self._watch = None
        self.registered = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._writer is not None:
            self._writer.close()
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
            except (OSError, ConnectionError, ValueError, HTTPClientError, EOFError) as e:
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
        for _ in range(5):  # follow 307s to the leader
            parts = urlsplit(url)
            host, port = parts.hostname or "127.0.0.1", parts.port or 80
            reader, writer = await asyncio.open_connection(host, port)
            self._writer = writer
            body = json.dumps(self._registration()).encode()
            writer.write(
                b"POST /localmesos/agent/subscribe HTTP/1.1\r\n"
                + f"Host: {host}:{port}\r\nContent-Type: application/json\r\n".encode()
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            status, headers = await _read_head(reader)
            if status == 307 and "location" in headers:
                writer.close()
                loc = headers["location"]
                url = ("http:" + loc) if loc.startswith("//") else loc
                url = url.split("/localmesos", 1)[0]
                continue
            if status != 200:
                writer.close()
                raise ConnectionError(f"master at {url} answered {status}")
            await self._consume(reader, headers, url)
            return
        raise ConnectionError(f"too many redirects from {url}")

    async def _consume(self, reader: asyncio.StreamReader, headers: dict, url: str) -> None:
        decoder = Decoder()
        chunked = "chunked" in headers.get("transfer-encoding", "")
        while True:
            if chunked:
                line = await reader.readline()
                if not line:
                    raise EOFError("master closed the stream")
                size = int(line.strip().split(b";")[0] or b"0", 16)
                if size == 0:
                    raise EOFError("master ended the stream")
                data = await reader.readexactly(size)
                await reader.readexactly(2)
            else:
                data = await reader.read(65536)
                if not data:
                    raise EOFError("master closed the stream")
            for record in decoder.feed(data):
                self._command(json.loads(record), url)

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


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    if not status_line:
        raise EOFError("master closed the connection")
    parts = status_line.decode("latin-1").split()
    status = int(parts[1])
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers
