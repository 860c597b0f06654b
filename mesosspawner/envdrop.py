"""One-time env files, served from the hub to the Mesos fetcher: how secrets reach every task.

A real agent shows a TaskInfo's environment to anyone who can read its ``/state`` or operator API,
and on ``ps`` (``docker run -e``, ``mesos-containerizer launch --launch_info``). So a task's secret
variables (``taskinfo.secrets_in_env_file``) travel as a file instead: the spawner puts them here,
the TaskInfo names the URL as a fetcher URI (``output_file`` in the sandbox), and the task's start
wrapper reads the file and deletes it before the notebook starts. Each URL is a 256-bit random
path that answers exactly once and expires after a deadline, so neither a log line nor the task's
JSON gives a working credential once the fetcher has been.

The server is small on purpose: HTTPS with the hub's internal certificate when the hub uses
``internal_ssl`` (the agents must then trust the hub's CA), at most ``max_connections`` open
connections, and a connection that sends no complete request within ``idle_timeout`` seconds is
closed. A server that failed to bind is not kept: the next spawn tries again.
"""

from __future__ import annotations

import logging
import secrets
import socket
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass

from tornado import web
from tornado.httpserver import HTTPServer

log = logging.getLogger("mesosspawner.envdrop")

MAX_CONNECTIONS = 64
IDLE_TIMEOUT = 10.0
_TAKEN_REMEMBERED = 4096  # keys fetched already, to log a second fetch (a stolen URL)


@dataclass
class _Entry:
    text: str
    expires: float


class _CappedServer(HTTPServer):
    """An HTTPServer that closes connections beyond ``max_connections`` at once (tornado keeps
    accepting otherwise, and each open connection costs the hub a socket and a coroutine)."""

    def initialize(self, *args, max_connections: int = MAX_CONNECTIONS, **kwargs) -> None:
        super().initialize(*args, **kwargs)
        self.max_connections = max_connections
        self.refused = 0

    def handle_stream(self, stream, address) -> None:
        if len(self._connections) >= self.max_connections:
            self.refused += 1
            if self.refused in (1, 10, 100) or self.refused % 1000 == 0:
                log.warning(
                    "env-file server: %d connection(s) refused, over the cap of %d open ones",
                    self.refused,
                    self.max_connections,
                )
            stream.close()
            return
        super().handle_stream(stream, address)


class EnvDrop:
    """A tiny HTTP(S) server in the hub process holding env files until fetched once."""

    _shared: dict[tuple[str, int], EnvDrop] = {}

    def __init__(
        self,
        bind_ip: str,
        port: int,
        public_host: str,
        *,
        certfile: str | None = None,
        keyfile: str | None = None,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.bind_ip = bind_ip
        self.port = port
        self.public_host = public_host
        self.certfile = certfile
        self.keyfile = keyfile
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._entries: dict[str, _Entry] = {}
        self._taken: OrderedDict[str, float] = OrderedDict()
        self._server: _CappedServer | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.certfile else "http"

    @classmethod
    def shared(cls, bind_ip: str, port: int, public_host: str, **options) -> EnvDrop:
        """The drop for this address in this process, started on first use. One that fails to
        start (the port is taken, the certificate unreadable) raises and is not kept."""
        key = (bind_ip, port)
        drop = cls._shared.get(key)
        if drop is None:
            drop = cls(bind_ip, port, public_host, **options)
            drop.start()
            cls._shared[key] = drop
        return drop

    def start(self) -> None:
        ssl_ctx = None
        if self.certfile:
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_ctx.load_cert_chain(self.certfile, self.keyfile)
        app = web.Application([(r"/env/([A-Za-z0-9_-]{43})", _EnvHandler, {"drop": self})])
        sock = socket.socket(socket.AF_INET6 if ":" in self.bind_ip else socket.AF_INET)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.bind_ip, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._server = _CappedServer(
            app,
            xheaders=False,
            ssl_options=ssl_ctx,
            no_keep_alive=True,  # one fetch per connection
            idle_connection_timeout=self.idle_timeout,  # also the request-header deadline
            body_timeout=self.idle_timeout,
            max_header_size=16 * 1024,
            max_body_size=1024,  # GET only
            max_connections=self.max_connections,
        )
        self._server.add_sockets([sock])
        log.info("Serving one-time env files on %s://%s:%d", self.scheme, self.bind_ip, self.port)

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
        return key, f"{self.scheme}://{host}:{self.port}/env/{key}"

    def discard(self, key: str) -> None:
        self._entries.pop(key, None)

    def take(self, key: str) -> str | None:
        self._expire()
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._taken[key] = time.monotonic()
            while len(self._taken) > _TAKEN_REMEMBERED:
                self._taken.popitem(last=False)
        return entry.text if entry else None

    def was_taken(self, key: str) -> bool:
        return key in self._taken

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, e in self._entries.items() if e.expires < now]:
            del self._entries[key]


class EnvFiles:
    """One spawner's one-time env files: prepared before its launch is queued (one URL per
    possible launch attempt, as each answers once), discarded when the launch ends (the
    fetcher has been by then, or never comes)."""

    def __init__(self) -> None:
        self._drop: EnvDrop | None = None
        self._keys: list[str] = []

    def prepare(self, drop: EnvDrop, text: str, count: int, ttl: float) -> tuple[str, ...]:
        self.discard()
        self._drop = drop
        urls = []
        for _ in range(count):
            key, url = drop.put(text, ttl)
            self._keys.append(key)
            urls.append(url)
        return tuple(urls)

    def discard(self) -> None:
        if self._drop is not None:
            for key in self._keys:
                self._drop.discard(key)
        self._keys = []


class _EnvHandler(web.RequestHandler):
    def initialize(self, drop: EnvDrop) -> None:
        self.drop = drop

    def get(self, key: str) -> None:
        text = self.drop.take(key)
        if text is None:
            if self.drop.was_taken(key):
                # The agent's fetcher fetches once; a second request means someone else had
                # the URL (an agent's /state read while the task staged). If they were first,
                # this is the fetcher, its task fails, the spawn fails and JupyterHub deletes
                # the token they got.
                log.warning(
                    "env file fetched a second time (now from %s): if that is the agent, its"
                    " notebook's spawn fails and JupyterHub revokes the token",
                    self.request.remote_ip,
                )
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
