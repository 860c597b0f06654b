"""Helpers for tests that drive localmesos: a raw v1 scheduler connection read from the socket
(so chunking and RecordIO are seen exactly as sent), TaskInfo builders and the CLI as a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from mesosspawner.mesos.recordio import Decoder

from .cluster import LocalCluster
from .config import ClusterConfig


class RawScheduler:
    """One SUBSCRIBE stream read byte by byte, plus helpers for the other calls."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.host, port = url.split("//")[1].split(":")
        self.port = int(port)
        self.events: asyncio.Queue[dict] = asyncio.Queue()
        self.backlog: list[dict] = []
        self.stream_id: str | None = None
        self.framework_id: str | None = None
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.raw_chunks: list[bytes] = []
        self._reader_task: asyncio.Task | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.closed = asyncio.Event()

    async def subscribe(self, framework_info: dict, **extra) -> dict:
        """SUBSCRIBE; returns the first event (normally SUBSCRIBED)."""
        body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info, **extra}}
        if "id" in framework_info:
            body["framework_id"] = framework_info["id"]
        data = json.dumps(body).encode()
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        writer.write(
            b"POST /api/v1/scheduler HTTP/1.1\r\n"
            + f"Host: {self.host}:{self.port}\r\n".encode()
            + b"Content-Type: application/json\r\nAccept: application/json\r\n"
            + f"Content-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        line = await reader.readline()
        self.status = int(line.split()[1])
        while True:
            h = await reader.readline()
            if h in (b"\r\n", b""):
                break
            k, _, v = h.decode().partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self.stream_id = self.headers.get("mesos-stream-id")
        self._reader_task = asyncio.get_running_loop().create_task(self._read(reader))
        first = await self.next_event(timeout=10)
        if first.get("type") == "SUBSCRIBED":
            self.framework_id = first["subscribed"]["framework_id"]["value"]
        return first

    async def _read(self, reader: asyncio.StreamReader) -> None:
        decoder = Decoder()
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                size = int(line.strip(), 16)
                if size == 0:
                    break
                chunk = await reader.readexactly(size)
                await reader.readexactly(2)
                self.raw_chunks.append(chunk)
                for record in decoder.feed(chunk):
                    await self.events.put(json.loads(record))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed.set()

    async def next_event(self, *types: str, timeout: float = 10) -> dict:
        """The next event of one of ``types`` (any type but HEARTBEAT when none).

        Events of other types are kept, in order, for later calls (never dropped).
        """

        def wanted(event: dict) -> bool:
            return event["type"] in types if types else event["type"] != "HEARTBEAT"

        for i, event in enumerate(self.backlog):
            if wanted(event):
                del self.backlog[i]
                return event
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {types or 'event'} within {timeout}s")
            try:
                event = await asyncio.wait_for(self.events.get(), remaining)
            except TimeoutError:
                raise TimeoutError(f"no {types or 'event'} within {timeout}s") from None
            if wanted(event):
                return event
            if event["type"] != "HEARTBEAT":
                self.backlog.append(event)

    async def update(self, task_id: str | None = None, timeout: float = 10) -> dict:
        while True:
            ev = await self.next_event("UPDATE", timeout=timeout)
            status = ev["update"]["status"]
            if task_id is None or status["task_id"]["value"] == task_id:
                return status

    async def offers(self, timeout: float = 10) -> list[dict]:
        ev = await self.next_event("OFFERS", timeout=timeout)
        return ev["offers"]["offers"]

    async def call(
        self, body: dict, *, stream_id: str | None = "", headers=None
    ) -> tuple[int, str]:
        """POST a call (``framework_id`` added); returns (status code, body text)."""
        body = dict(body)
        if self.framework_id and "framework_id" not in body:
            body["framework_id"] = {"value": self.framework_id}
        hdrs = {"Content-Type": "application/json"}
        sid = self.stream_id if stream_id == "" else stream_id
        if sid is not None:
            hdrs["Mesos-Stream-Id"] = sid
        hdrs.update(headers or {})
        return await post(self.url, json.dumps(body), hdrs)

    async def accept(self, offer_ids: list[str], tasks: list[dict], filters=None) -> None:
        body: dict = {
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [{"value": o} for o in offer_ids],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
            },
        }
        if filters is not None:
            body["accept"]["filters"] = filters
        code, text = await self.call(body)
        assert code == 202, text

    async def ack(self, status: dict) -> None:
        code, text = await self.call(
            {
                "type": "ACKNOWLEDGE",
                "acknowledge": {
                    "agent_id": status["agent_id"],
                    "task_id": status["task_id"],
                    "uuid": status["uuid"],
                },
            }
        )
        assert code == 202, text

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            self._reader_task.cancel()
            try:
                await self._reader_task
            except (asyncio.CancelledError, Exception):
                pass


async def post(url: str, body: str | bytes, headers: dict, method: str = "POST") -> tuple[int, str]:
    client = AsyncHTTPClient()
    req = HTTPRequest(
        f"{url}/api/v1/scheduler",
        method=method,
        body=body if method in ("POST", "PUT", "PATCH") else None,
        headers=headers,
        follow_redirects=False,
        request_timeout=10,
        allow_nonstandard_methods=True,
    )
    resp = await client.fetch(req, raise_error=False)
    return resp.code, (resp.body or b"").decode(errors="replace")


def framework_info(**kw) -> dict:
    info = {"user": os.environ.get("USER") or "root", "name": "conformance"}
    info.update(kw)
    return info


def command_task(offer: dict, task_id: str, command: str, **res: float) -> dict:
    """A shell command TaskInfo using ``res`` (e.g. cpus=0.1, mem=32) from ``offer``.

    Resources carry the offer's role and, for MULTI_ROLE offers, its allocation_info. Without
    ``res`` the task takes cpus=0.1, mem=32 (Mesos refuses a task with no resources).
    """
    res = res or {"cpus": 0.1, "mem": 32}
    alloc = offer.get("allocation_info")
    resources = []
    for name, value in res.items():
        r = {"name": name, "type": "SCALAR", "scalar": {"value": value}}
        reservations = _reservations_of(offer, name)
        if reservations is not None:
            r["reservations"] = reservations
        else:
            r["role"] = _role_of(offer, name)
        if alloc:
            r["allocation_info"] = alloc
        resources.append(r)
    return {
        "name": task_id,
        "task_id": {"value": task_id},
        "agent_id": offer["agent_id"],
        "resources": resources,
        "command": {"value": command, "shell": True},
    }


def _reservations_of(offer: dict, name: str) -> list | None:
    for r in offer["resources"]:
        if r["name"] == name and "role" not in r:
            return r.get("reservations") or None
    return None


def _role_of(offer: dict, name: str) -> str:
    for r in offer["resources"]:
        if r["name"] == name:
            return r.get("role", "*")
    return "*"


def start_cli(args: list[str], log_path) -> tuple[subprocess.Popen, str]:
    """Start ``python -m mesosspawner.localmesos ARGS``; wait for the listening line."""
    log = open(log_path, "w")  # noqa: SIM115 - kept open for the child's lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesosspawner.localmesos", *args],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("localmesos master listening on "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"localmesos did not start: {line!r}; see {log_path}")
    return proc, line.strip().rsplit(" ", 1)[1]


def stop_cli(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def running_cluster(config: ClusterConfig, work_dir: str, **overrides):
    """An in-process cluster on a free port with test-friendly short intervals; stopped on exit.
    It runs tasks as root (``allow_root_tasks``), as a real test agent does."""
    settings = {
        "port": 0,
        "allow_root_tasks": True,
        "heartbeat_interval": 0.5,
        "status_retry_interval": 0.5,
        "allocation_interval": 0.1,
        **overrides,
    }
    cluster = LocalCluster(config, work_dir=work_dir, **settings)
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()
