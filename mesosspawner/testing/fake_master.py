"""A scriptable fake Mesos master for the client's tests: misbehaviour on demand.

It runs on its own thread and event loop, so the client's loop measures only the client (the
stall test) and a master that "hangs" cannot hang the test. Tests script it with plain data set
before the client connects (``plan``) and drive the live stream with ``await master.send(...)``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from mesosspawner.mesos import recordio


def chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


def event_chunk(event: dict) -> bytes:
    """An event as real Mesos sends it: one RecordIO record per HTTP chunk."""
    return chunk(recordio.encode(json.dumps(event).encode()))


def offer(i: int, agent: str = "agent-1") -> dict:
    return {
        "id": {"value": f"offer-{i}"},
        "framework_id": {"value": "fw"},
        "agent_id": {"value": agent},
        "hostname": f"{agent}.example",
        "url": {"scheme": "http", "address": {"ip": "127.0.0.1", "port": 5051}},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4.0}, "role": "*"},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 8192.0}, "role": "*"},
            {
                "name": "ports",
                "type": "RANGES",
                "ranges": {"range": [{"begin": 31000, "end": 31999}]},
                "role": "*",
            },
        ],
        "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}],
    }


def status(task: str, state: str = "TASK_RUNNING", *, ack: bool = True, agent="agent-1") -> dict:
    out = {
        "task_id": {"value": task},
        "agent_id": {"value": agent},
        "state": state,
        "source": "SOURCE_EXECUTOR",
        "timestamp": time.time(),
    }
    if ack:
        out["uuid"] = "dXVpZC0" + uuid.uuid4().hex[:8]
    return out


def offers_event(offers: list[dict]) -> dict:
    return {"type": "OFFERS", "offers": {"offers": offers}}


def update_event(st: dict) -> dict:
    return {"type": "UPDATE", "update": {"status": st}}


@dataclass
class Action:
    """How the master answers one SUBSCRIBE.

    kind: "ok" (200 + SUBSCRIBED, then ``after``), "status" (``code`` with ``body``), "hang"
    (never answer), "redirect" (307 to ``location``), "raw" (write ``raw`` bytes then close).
    """

    kind: str = "ok"
    code: int = 500
    body: bytes = b""
    location: str = ""
    raw: bytes = b""
    heartbeat: float = 15.0
    after: list[bytes] = field(default_factory=list)  # chunks sent right after SUBSCRIBED
    close_after: bool = False  # end the response after ``after``


class FakeMaster:
    def __init__(self, ssl_ctx: ssl.SSLContext | None = None) -> None:
        self.plan: collections.deque[Action] = collections.deque()
        self.default = Action()
        self.subscribes: list[dict] = []
        self.subscribe_headers: list[dict] = []
        self.calls: list[dict] = []
        self.call_headers: list[dict] = []
        self.call_answer: Callable[[dict], tuple[int, bytes]] = lambda call: (202, b"")
        # Operator endpoints (GET /master/...): path with query -> (code, headers, JSON body).
        self.operator: dict[str, tuple[int, dict, object]] = {}
        self.operator_headers: list[dict] = []
        # Operator API calls (POST /api/v1, e.g. TEARDOWN), and how each is answered: (code,
        # body) or (code, body, headers).
        self.operator_calls: list[dict] = []
        self.operator_answer: Callable[[dict], tuple] = lambda call: (202, b"")
        self.journal: list[str] = []  # shared with tests: ordering across threads
        self.framework_id = "fw-" + uuid.uuid4().hex[:8]
        self.stream_id = ""
        self._ssl = ssl_ctx
        self._streams: list[_Subscriber] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="fake-master")
        self.port = 0
        self.scheme = "https" if ssl_ctx else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeMaster:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake master did not start")
        return self

    def stop(self) -> None:
        if self.loop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = Application(
            [
                (r"/api/v1/scheduler", _SchedulerHandler, {"master": self}),
                (r"/version", _VersionHandler),
                (r"/stats", _StatsHandler, {"master": self}),
                (r"/master/.*", _OperatorHandler, {"master": self}),
                (r"/api/v1", _OperatorHandler, {"master": self}),
            ]
        )
        server = HTTPServer(app, ssl_options=self._ssl, idle_connection_timeout=3600)
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        server.add_sockets(sockets)
        self._ready.set()
        await self._stop.wait()
        for sub in list(self._streams):
            sub.end()
        server.stop()
        await server.close_all_connections()

    # --- driving the live stream from the test's loop ---

    async def _in_master(self, fn: Callable[[], object]) -> object:
        assert self.loop is not None

        async def run() -> object:
            return fn()

        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(run(), self.loop))

    async def send(self, *events: dict | bytes) -> None:
        """Write events (dicts) or raw chunks to every open stream."""
        data = b"".join(e if isinstance(e, bytes) else event_chunk(e) for e in events)
        await self._in_master(lambda: [s.write(data) for s in self._streams])

    async def drop(self) -> None:
        """Close every stream's connection (as a crashed master would)."""
        await self._in_master(lambda: [s.abort() for s in list(self._streams)])

    @property
    def open_streams(self) -> int:
        return len(self._streams)


class _Subscriber:
    def __init__(self, handler: _SchedulerHandler) -> None:
        self.handler = handler
        self.done = asyncio.Event()

    def write(self, data: bytes) -> None:
        stream = self.handler.request.connection.stream
        if not stream.closed():
            stream.write(data)

    def abort(self) -> None:
        self.handler.request.connection.stream.close()
        self.done.set()

    def end(self) -> None:
        self.done.set()


class _SchedulerHandler(RequestHandler):
    def initialize(self, master: FakeMaster) -> None:
        self.master = master
        self.sub: _Subscriber | None = None

    def on_connection_close(self) -> None:
        if self.sub is not None:
            self.sub.done.set()

    async def post(self) -> None:
        m = self.master
        call = json.loads(self.request.body)
        if call.get("type") != "SUBSCRIBE":
            m.calls.append(call)
            m.call_headers.append(dict(self.request.headers))
            m.journal.append(f"call:{call['type']}:{_call_key(call)}")
            code, body = m.call_answer(call)
            self.set_status(code)
            if body:
                self.write(body)
            return
        m.subscribes.append(call)
        m.subscribe_headers.append(dict(self.request.headers))
        action = m.plan.popleft() if m.plan else m.default
        if action.kind == "status":
            self.set_status(action.code)
            self.write(action.body)
            return
        if action.kind == "redirect":
            self.set_status(307)
            self.set_header("Location", action.location)
            return
        self.sub = _Subscriber(self)
        if action.kind == "hang":
            await self.sub.done.wait()
            return
        if action.kind == "raw":
            stream = self.request.connection.stream
            await stream.write(action.raw)
            stream.close()
            return
        framework_id = (call.get("framework_id") or {}).get("value") or m.framework_id
        m.stream_id = uuid.uuid4().hex
        self.set_status(200)
        self.set_header("Content-Type", "application/json")
        self.set_header("Mesos-Stream-Id", m.stream_id)
        await self.flush()  # headers, Transfer-Encoding: chunked
        subscribed = {
            "type": "SUBSCRIBED",
            "subscribed": {
                "framework_id": {"value": framework_id},
                "heartbeat_interval_seconds": action.heartbeat,
                "master_info": {"id": "fake", "address": {"ip": "127.0.0.1", "port": m.port}},
            },
        }
        self.sub.write(event_chunk(subscribed) + b"".join(action.after))
        if action.close_after:
            await self.request.connection.stream.write(b"0\r\n\r\n")
            self.request.connection.stream.close()
            return
        m._streams.append(self.sub)
        try:
            await self.sub.done.wait()
        finally:
            m._streams.remove(self.sub)
        self.request.connection.stream.close()


class _VersionHandler(RequestHandler):
    def get(self) -> None:
        self.write({"version": "1.11.0", "build_user": "fake", "git_tag": "1.11.0"})


class _OperatorHandler(RequestHandler):
    """``GET /master/...`` answered from ``FakeMaster.operator`` (404 for anything else);
    ``POST /api/v1`` calls recorded and answered by ``FakeMaster.operator_answer``."""

    def initialize(self, master: FakeMaster) -> None:
        self.master = master

    def get(self) -> None:
        self.master.operator_headers.append(dict(self.request.headers))
        code, headers, body = self.master.operator.get(self.request.uri, (404, {}, None))
        self.set_status(code)
        for name, value in headers.items():
            self.set_header(name, value)
        if body is not None:
            self.write(json.dumps(body))

    def post(self) -> None:
        self.master.operator_headers.append(dict(self.request.headers))
        call = json.loads(self.request.body)
        self.master.operator_calls.append(call)
        code, body, *headers = self.master.operator_answer(call)
        self.set_status(code)
        for name, value in (headers[0] if headers else {}).items():
            self.set_header(name, value)
        if body:
            self.write(body)


class _StatsHandler(RequestHandler):
    """Counts for a master running in another process (the stall test, the benchmark)."""

    def initialize(self, master: FakeMaster) -> None:
        self.master = master

    def get(self) -> None:
        types = collections.Counter(c["type"] for c in self.master.calls)
        self.write({"subscribes": len(self.master.subscribes), "calls": dict(types)})


def burst_chunks(offers: int, updates: int, agents: int = 50) -> list[bytes]:
    """``offers`` OFFERS events of one offer each, then ``updates`` UPDATEs carrying a uuid."""
    out = [event_chunk(offers_event([offer(i, f"agent-{i % agents}")])) for i in range(offers)]
    out += [event_chunk(update_event(status(f"task-{i}"))) for i in range(updates)]
    return out


@contextlib.contextmanager
def burst_master_process(offers: int, updates: int) -> Iterator[str]:
    """A fake master in its own process (no GIL shared with the client); yields its URL."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesosspawner.testing.fake_master"]
        + ["--offers", str(offers), "--updates", str(updates)],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        if "listening on " not in line:
            raise RuntimeError(f"fake master did not start: {line!r}")
        yield line.split("listening on ", 1)[1].strip()
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def stats(url: str) -> dict:
    """The counts of a master started by ``burst_master_process`` (blocking: call off-loop)."""
    with urllib.request.urlopen(f"{url}/stats", timeout=10) as response:
        return json.load(response)


class _BurstProtocol(asyncio.Protocol):
    """One connection to the burst master: a bare HTTP/1.1 server, so that the master is never
    what limits a client's measured throughput (tornado's server tops out near the clients)."""

    def __init__(self, server: BurstServer) -> None:
        self.server = server
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.streaming = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.server.streams.discard(self)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while not self.streaming:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).decode("latin1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4 : end + 4 + length])
            del self.buf[: end + 4 + length]
            self.request(head[0].split(" ")[:2], body)

    def respond(self, code: str, body: bytes = b"", content_type: str = "application/json"):
        self.transport.write(
            f"HTTP/1.1 {code}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )

    def request(self, start: list[str], body: bytes) -> None:
        method, path = start
        if method == "GET" and path == "/version":
            self.respond("200 OK", json.dumps({"version": "1.11.0"}).encode())
        elif method == "GET" and path == "/stats":
            stats = {"subscribes": self.server.subscribes, "calls": dict(self.server.calls)}
            self.respond("200 OK", json.dumps(stats).encode())
        elif method == "POST" and path.endswith("/api/v1/scheduler"):
            call = json.loads(body)
            if call["type"] != "SUBSCRIBE":
                self.server.calls[call["type"]] += 1
                self.respond("202 Accepted")
                return
            self.server.subscribes += 1
            self.streaming = True
            self.server.streams.add(self)
            subscribed = {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "framework_id": {"value": f"fw-burst-{self.server.subscribes}"},
                    "heartbeat_interval_seconds": 15.0,
                    "master_info": {"id": "burst", "address": {"ip": "127.0.0.1", "port": 0}},
                },
            }
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\nMesos-Stream-Id: "
                + uuid.uuid4().hex.encode()
                + b"\r\n\r\n"
                + event_chunk(subscribed)
                + self.server.burst
            )
        else:
            self.respond("404 Not Found", b"no such endpoint", "text/plain")


class BurstServer:
    """Streams the same pre-encoded burst to every subscriber and answers every call 202."""

    def __init__(self, offers: int, updates: int) -> None:
        self.burst = b"".join(burst_chunks(offers, updates))
        self.subscribes = 0
        self.calls: collections.Counter[str] = collections.Counter()
        self.streams: set[_BurstProtocol] = set()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _BurstProtocol(self), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        print(f"fake master listening on http://127.0.0.1:{port}", flush=True)
        heartbeat = event_chunk({"type": "HEARTBEAT"})
        stdin_closed = loop.run_in_executor(None, sys.stdin.read)
        while not stdin_closed.done():
            await asyncio.wait([stdin_closed], timeout=5.0)
            for stream in list(self.streams):
                stream.transport.write(heartbeat)
        server.close()


def main(argv: list[str] | None = None) -> None:
    """Serve a burst to every subscriber from its own process, until stdin closes."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--offers", type=int, default=1000)
    parser.add_argument("--updates", type=int, default=10000)
    args = parser.parse_args(argv)
    asyncio.run(BurstServer(args.offers, args.updates).serve())


def _call_key(call: dict) -> str:
    body = call.get(call["type"].lower(), {}) or {}
    if "task_id" in body:
        return body["task_id"]["value"]
    return ""


if __name__ == "__main__":
    main()
