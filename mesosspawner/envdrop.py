"""One-time env files for Docker tasks, served from the hub to the Mesos fetcher.

Mesos's Docker containerizer hands every variable of a task to ``docker run -e NAME=VALUE``, and
that process lives as long as the container: anyone on the agent could read the notebook's API
token with ``ps``. Secret variables therefore travel as a file instead. The spawner puts them
here, the TaskInfo names the URL as a fetcher URI (``output_file`` in the sandbox, which Mesos
creates mode 0750) and ``--env-file`` as a Docker parameter. Each URL is a 256-bit random path
that answers exactly once and expires after a deadline, so neither a log line nor the task's
JSON in ``/master/state`` gives a working credential.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from dataclasses import dataclass

from tornado import web
from tornado.httpserver import HTTPServer

log = logging.getLogger("mesosspawner.envdrop")


@dataclass
class _Entry:
    text: str
    expires: float


class EnvDrop:
    """A tiny HTTP server in the hub process holding env files until fetched once."""

    _shared: dict[tuple[str, int], EnvDrop] = {}

    def __init__(self, bind_ip: str, port: int, public_host: str) -> None:
        self.bind_ip = bind_ip
        self.port = port
        self.public_host = public_host
        self._entries: dict[str, _Entry] = {}
        self._server: HTTPServer | None = None

    @classmethod
    def shared(cls, bind_ip: str, port: int, public_host: str) -> EnvDrop:
        """The drop for this address in this process, started on first use."""
        key = (bind_ip, port)
        drop = cls._shared.get(key)
        if drop is None:
            drop = cls._shared[key] = cls(bind_ip, port, public_host)
            drop.start()
        return drop

    def start(self) -> None:
        app = web.Application([(r"/env/([A-Za-z0-9_-]{43})", _EnvHandler, {"drop": self})])
        sock = socket.socket(socket.AF_INET6 if ":" in self.bind_ip else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.bind_ip, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._server = HTTPServer(app, xheaders=False)
        self._server.add_sockets([sock])
        log.info("Serving one-time env files for Docker tasks on %s:%d", self.bind_ip, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        EnvDrop._shared = {k: v for k, v in EnvDrop._shared.items() if v is not self}

    def put(self, text: str, ttl: float) -> tuple[str, str]:
        """Hold ``text`` for one fetch within ``ttl`` seconds; returns (key, URL)."""
        self._expire()
        key = secrets.token_urlsafe(32)
        self._entries[key] = _Entry(text, time.monotonic() + ttl)
        host = f"[{self.public_host}]" if ":" in self.public_host else self.public_host
        return key, f"http://{host}:{self.port}/env/{key}"

    def discard(self, key: str) -> None:
        self._entries.pop(key, None)

    def take(self, key: str) -> str | None:
        self._expire()
        entry = self._entries.pop(key, None)
        return entry.text if entry else None

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, e in self._entries.items() if e.expires < now]:
            del self._entries[key]


class _EnvHandler(web.RequestHandler):
    def initialize(self, drop: EnvDrop) -> None:
        self.drop = drop

    def get(self, key: str) -> None:
        text = self.drop.take(key)
        if text is None:
            # Never echo the key: it is half of a credential.
            raise web.HTTPError(404, reason="unknown, expired or already fetched")
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(text)

    def log_exception(self, typ, value, tb) -> None:
        if not isinstance(value, web.HTTPError):
            super().log_exception(typ, value, tb)

    def _request_summary(self) -> str:
        return f"{self.request.method} /env/<key> ({self.request.remote_ip})"
