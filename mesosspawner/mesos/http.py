"""HTTP/1.1 to a Mesos master's scheduler endpoint, on tornado IOStreams.

Connecting (http or https with a CA file, basic authentication), the streaming SUBSCRIBE response
(chunked RecordIO records), the pipelined keep-alive connection that carries calls, and 307
redirects. Mesos semantics (events, calls, reconnection) stay in ``client``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import logging
import re
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpclient import TCPClient

from . import recordio

log = logging.getLogger("mesosspawner.mesos.http")

SCHEDULER_PATH = "/api/v1/scheduler"
_MAX_ERROR_BODY = 64 * 1024


class MesosError(Exception):
    """A call the master rejected (``code`` is the HTTP status) or could not be delivered."""

    def __init__(self, message: str, code: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.body = body


@dataclass(frozen=True)
class Target:
    """A master's HTTP endpoint. Credentials never appear in ``url`` (which is logged)."""

    scheme: str
    host: str
    port: int
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"master URL {url!r} is not http(s)://host:port")
        port = parts.port or (443 if parts.scheme == "https" else 5050)
        return cls(parts.scheme, parts.hostname, port, _prefix_of(parts.path))

    def redirect(self, location: str) -> Target:
        """Where a 307 ``Location`` (``//host:port[/path]``) points, keeping our scheme."""
        parts = urlsplit(location)
        if not parts.hostname:
            raise ValueError(f"redirect Location {location!r} names no host")
        scheme = parts.scheme or self.scheme
        port = parts.port or (443 if scheme == "https" else 5050)
        return Target(scheme, parts.hostname, port, _prefix_of(parts.path))

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.prefix}"


def _prefix_of(path: str) -> str:
    path = path.rstrip("/")
    if path.endswith(SCHEDULER_PATH):
        path = path[: -len(SCHEDULER_PATH)]
    return path


class ChunkedDecoder:
    """Incremental decoder of HTTP/1.1 chunked transfer coding (pure)."""

    __slots__ = ("_buf", "_remaining", "done")

    def __init__(self) -> None:
        self._buf = bytearray()
        # None: expecting a size line; > 0: data bytes left; -1: expecting the CRLF after data;
        # -2: in the trailer section after the last (empty) chunk.
        self._remaining: int | None = None
        self.done = False

    def feed(self, data: bytes) -> bytes:
        buf = self._buf
        buf += data
        out = bytearray()
        pos = 0
        while not self.done:
            remaining = self._remaining
            if remaining is None:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    if len(buf) - pos > 1024:
                        raise recordio.RecordIOError(
                            f"HTTP chunk size line too long: {bytes(buf[pos : pos + 40])!r}"
                        )
                    break
                line = bytes(buf[pos:end]).split(b";", 1)[0].strip()
                if not line or line.strip(b"0123456789abcdefABCDEF"):
                    raise recordio.RecordIOError(f"invalid HTTP chunk size {line[:40]!r}")
                size = int(line, 16)
                pos = end + 2
                self._remaining = size if size else -2
            elif remaining == -2:
                end = buf.find(b"\r\n", pos)
                if end < 0:
                    if len(buf) - pos > 8192:
                        raise recordio.RecordIOError("HTTP chunked trailer too long")
                    break
                trailer_ended = end == pos
                pos = end + 2
                if trailer_ended:
                    self.done = True
            elif remaining > 0:
                take = min(remaining, len(buf) - pos)
                if take <= 0:
                    break
                out += buf[pos : pos + take]
                pos += take
                remaining -= take
                self._remaining = remaining if remaining else -1
            else:
                if len(buf) - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise recordio.RecordIOError(
                        f"HTTP chunk not terminated by CRLF: {bytes(buf[pos : pos + 20])!r}"
                    )
                pos += 2
                self._remaining = None
        if pos:
            del buf[:pos]
        return bytes(out)

    def rest(self) -> bytes:
        """Bytes after the last chunk (the next message on a kept-alive connection)."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest


class BadResponse(ValueError):
    """The master's answer is not HTTP/1.x."""


def parse_head(data: bytes) -> tuple[int, str, dict[str, str]]:
    """Status code, reason and headers (lower-case names) of a response head (pure).

    A deliberately small parser: calls are answered with a handful of headers thousands of times
    a second, and tornado's general one costs more than the rest of a call.
    """
    lines = data.decode("latin1").split("\r\n")
    status = lines[0].split(" ", 2)
    if len(status) < 2 or not status[0].startswith("HTTP/1.") or not status[1].isdigit():
        raise BadResponse(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadResponse(f"malformed HTTP header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return int(status[1]), status[2] if len(status) > 2 else "", headers


# One HTTP chunk holding exactly one RecordIO record: how Mesos writes every event.
_CHUNKED_RECORD = re.compile(rb"([0-9a-fA-F]{1,8})\r\n([0-9]{1,10})\n")
_CHUNKED_RECORD_START = re.compile(rb"[0-9a-fA-F]{0,8}(?:\r(?:\n[0-9]{0,10})?)?")


class RecordStream:
    """Records from an HTTP body of RecordIO, chunked or not (pure).

    Mesos writes every event as one HTTP chunk holding one RecordIO record; while the input keeps
    that shape, one regex match per event replaces the two framing decoders. Anything else (chunk
    extensions, records split across chunks, the terminating chunk) switches to the general path
    for good.
    """

    __slots__ = ("_buf", "_chunks", "_records", "_general")

    def __init__(self, chunked: bool) -> None:
        self._buf = bytearray()
        self._chunks = ChunkedDecoder() if chunked else None
        self._records = recordio.Decoder()
        self._general = not chunked

    @property
    def done(self) -> bool:
        return self._chunks is not None and self._chunks.done

    def feed(self, data: bytes) -> list[bytes]:
        if self._general:
            chunks = self._chunks
            return self._records.feed(chunks.feed(data) if chunks is not None else data)
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos, size = 0, len(buf)
        match = _CHUNKED_RECORD.match
        while True:
            m = match(buf, pos)
            if m is None:
                # A header cut short by the read waits for more; anything else is not our shape.
                if buf.startswith(b"0\r\n", pos) or not _CHUNKED_RECORD_START.fullmatch(buf, pos):
                    self._general = True
                break
            digits = m.group(2)
            start = m.end()
            end = start + int(digits)
            if int(m.group(1), 16) != len(digits) + 1 + end - start:
                self._general = True
                break
            if end + 2 > size:
                break
            if buf[end : end + 2] != b"\r\n":
                self._general = True
                break
            out.append(bytes(buf[start:end]))
            pos = end + 2
        if self._general:
            rest = bytes(buf[pos:])
            buf.clear()
            return out + self.feed(rest)
        del buf[:pos]
        return out


async def _read_head(stream: IOStream) -> tuple[int, str, dict[str, str]]:
    return parse_head(await stream.read_until(b"\r\n\r\n", max_bytes=65536))


async def _read_body(stream: IOStream, headers: dict[str, str], limit: int) -> tuple[bytes, bool]:
    """A non-streaming response body (truncated to ``limit``) and whether the connection can
    carry another request."""
    reusable = headers.get("connection", "").lower() != "close"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        decoder = ChunkedDecoder()
        body = bytearray()
        while not decoder.done:
            body += decoder.feed(await stream.read_bytes(65536, partial=True))
            if len(body) > limit:
                return bytes(body[:limit]), False
        return bytes(body), reusable and not decoder._buf
    length = headers.get("content-length")
    if length is not None:
        n = int(length)
        if n > limit:
            return bytes(await stream.read_bytes(limit)), False
        return (bytes(await stream.read_bytes(n)) if n else b""), reusable
    body = bytearray()
    try:
        while len(body) < limit:
            body += await stream.read_bytes(65536, partial=True)
    except StreamClosedError:
        pass
    return bytes(body[:limit]), False


def excerpt(body: bytes | str, limit: int = 500) -> str:
    """The start of a body, for a message a person reads."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "..."


class Redirect(Exception):
    """A 307 from a master that is not the leader; ``location`` names the one it believes is."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class ResponseParser:
    """Incremental parser of a sequence of HTTP/1.1 responses on one connection (pure)."""

    __slots__ = ("_buf", "_head", "_chunks", "_remaining", "_body")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._head: tuple[int, str, dict[str, str]] | None = None
        self._chunks: ChunkedDecoder | None = None
        self._remaining: int | None = None  # body bytes left; None with no chunks: until close
        self._body = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, str, bytes]]:
        """Complete responses as (code, reason, body), bodies truncated to _MAX_ERROR_BODY."""
        buf = self._buf
        buf += data
        out: list[tuple[int, str, bytes]] = []
        while True:
            if self._head is None:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > 65536:
                        raise BadResponse("HTTP response head larger than 64 KiB")
                    break
                code, reason, headers = self._head = parse_head(bytes(buf[: end + 4]))
                del buf[: end + 4]
                if 100 <= code < 200:  # interim response: the real one follows
                    self._head = None
                    continue
                if code in (204, 304):
                    self._remaining = 0
                elif "chunked" in headers.get("transfer-encoding", "").lower():
                    self._chunks = ChunkedDecoder()
                else:
                    length = headers.get("content-length")
                    if length is not None and not length.isdigit():
                        raise BadResponse(f"invalid Content-Length {length[:40]!r}")
                    self._remaining = int(length) if length is not None else None
            if self._chunks is not None:
                self._keep(self._chunks.feed(bytes(buf)))
                buf.clear()
                if not self._chunks.done:
                    break
                buf += self._chunks.rest()
                self._chunks = None
            elif self._remaining is None:
                self._keep(bytes(buf))  # the body ends when the connection does: see close()
                buf.clear()
                break
            else:
                take = min(self._remaining, len(buf))
                self._keep(bytes(buf[:take]))
                del buf[:take]
                self._remaining -= take
                if self._remaining:
                    break
            code, reason, _headers = self._head
            out.append((code, reason, bytes(self._body)))
            self._head, self._remaining = None, None
            self._body.clear()
        return out

    def close(self) -> tuple[int, str, bytes] | None:
        """At the end of the connection: a response whose body ran until the close, if any."""
        if self._head is not None and self._chunks is None and self._remaining is None:
            code, reason, _headers = self._head
            self._head = None
            return code, reason, bytes(self._body)
        return None

    def _keep(self, data: bytes) -> None:
        room = _MAX_ERROR_BODY - len(self._body)
        if room > 0:
            self._body += data[:room]


class CallPipe:
    """Calls to one master over one keep-alive connection, HTTP/1.1-pipelined.

    Requests queued in the same loop iteration leave in one write, and responses are matched
    to them in order (the master answers pipelined requests in order, as libprocess does). So an
    acknowledgement costs no task, no connection and no round trip of its own, and calls reach
    the master in the order they were made.
    """

    def __init__(self, target: Target, ssl_context: ssl.SSLContext | None, timeout: float):
        self.target = target
        self._ssl = ssl_context
        self._timeout = timeout
        self._loop = asyncio.get_running_loop()
        self._head = (
            f"POST {target.prefix}{SCHEDULER_PATH} HTTP/1.1\r\nHost: {target.netloc}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
        ).encode()
        self._stream: IOStream | None = None
        self._connecting: asyncio.Task | None = None
        self._reader: asyncio.Task | None = None  # reads the answers; ends with its stream
        self._outbox: list[tuple[bytes, asyncio.Future]] = []
        self._in_flight: collections.deque[asyncio.Future] = collections.deque()
        self._flush_pending = False
        self._progress = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._room: list[asyncio.Future] = []
        self._closed = False

    def submit(self, extra_headers: bytes, body: bytes) -> asyncio.Future:
        """Queue a POST; the future resolves to (code, reason, body) or fails with MesosError."""
        future = self._loop.create_future()
        if self._closed:
            future.set_exception(MesosError(f"the connection to {self.target.url} is closed"))
            return future
        request = self._head + extra_headers + b"Content-Length: %d\r\n\r\n" % len(body) + body
        self._outbox.append((request, future))
        if not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)
        return future

    @property
    def backlog(self) -> int:
        return len(self._outbox) + len(self._in_flight)

    async def room(self, limit: int) -> None:
        """Wait until fewer than ``limit`` calls are queued or unanswered (backpressure)."""
        while self.backlog >= limit and not self._closed:
            waiter = self._loop.create_future()
            self._room.append(waiter)
            await waiter

    def close(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        self._fail_all(MesosError(f"the connection to {self.target.url} was closed"))
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _flush(self) -> None:
        self._flush_pending = False
        if not self._outbox or self._closed:
            return
        stream = self._stream
        if stream is None or stream.closed():
            self._stream = None
            if self._connecting is None:
                self._connecting = self._loop.create_task(self._connect())
            return
        batch, self._outbox = self._outbox, []
        if not self._in_flight:
            self._progress = self._loop.time()
        self._in_flight.extend(future for _request, future in batch)
        stream.write(b"".join(request for request, _future in batch)).add_done_callback(_observe)
        if self._timer is None:
            self._timer = self._loop.call_later(self._timeout, self._check_timeout)

    async def _connect(self) -> None:
        try:
            stream = await asyncio.wait_for(
                _connect(self.target, self._ssl, self._timeout), self._timeout
            )
        except (OSError, ssl.SSLError, TimeoutError) as e:
            self._connecting = None
            cause = "timed out" if isinstance(e, TimeoutError) else describe_error(e)
            error = MesosError(f"cannot connect to {self.target.url}: {cause}")
            outbox, self._outbox = self._outbox, []
            for _request, future in outbox:
                if not future.done():
                    future.set_exception(error)
            self._wake_room()
            return
        self._connecting = None
        if self._closed:
            stream.close()
            return
        self._stream = stream
        self._reader = self._loop.create_task(self._read(stream), name="mesos-call-answers")
        self._reader.add_done_callback(self._reader_done)
        self._flush()

    def _reader_done(self, task: asyncio.Task) -> None:
        if task is self._reader:
            self._reader = None
        if not task.cancelled() and task.exception() is not None:
            # _read turns every failure it expects into failed calls: this one is a bug.
            log.error("Reading answers from %s failed", self.target.url, exc_info=task.exception())

    async def _read(self, stream: IOStream) -> None:
        parser = ResponseParser()
        in_flight = self._in_flight
        error: MesosError
        try:
            while True:
                data = await stream.read_bytes(65536, partial=True)
                for response in parser.feed(data):
                    if not in_flight:
                        raise BadResponse("an HTTP response nobody asked for")
                    future = in_flight.popleft()
                    if not future.done():
                        future.set_result(response)
                self._progress = self._loop.time()
                if self._room:
                    self._wake_room()
        except StreamClosedError as e:
            last = parser.close()
            if last is not None and in_flight:
                future = in_flight.popleft()
                if not future.done():
                    future.set_result(last)
            reason = describe_error(e.real_error) if e.real_error else "the master closed it"
            error = MesosError(f"connection to {self.target.url} lost: {reason}")
        except BadResponse as e:
            error = MesosError(f"bad HTTP response from {self.target.url}: {e}")
        except recordio.RecordIOError as e:
            error = MesosError(f"bad HTTP response from {self.target.url}: {e}")
        stream.close()
        if self._stream is stream:
            self._stream = None
        self._fail_in_flight(error)
        if self._outbox and not self._closed and not self._flush_pending:
            self._flush_pending = True
            self._loop.call_soon(self._flush)

    def _check_timeout(self) -> None:
        self._timer = None
        if not self._in_flight or self._closed:
            return
        waited = self._loop.time() - self._progress
        if waited >= self._timeout:
            if self._stream is not None:
                self._stream.close()
                self._stream = None
            self._fail_in_flight(
                MesosError(f"no answer from {self.target.url} within {self._timeout:g} s"),
                timeout=True,
            )
        else:
            self._timer = self._loop.call_later(self._timeout - waited, self._check_timeout)

    def _fail_in_flight(self, error: MesosError, timeout: bool = False) -> None:
        while self._in_flight:
            future = self._in_flight.popleft()
            if not future.done():
                future.set_exception(_copy_error(error, timeout))
        self._wake_room()

    def _fail_all(self, error: MesosError) -> None:
        outbox, self._outbox = self._outbox, []
        for _request, future in outbox:
            if not future.done():
                future.set_exception(_copy_error(error))
        self._fail_in_flight(error)

    def _wake_room(self) -> None:
        waiters, self._room = self._room, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class CallTimeout(MesosError, TimeoutError):
    """No answer within request_timeout (also a TimeoutError, for callers that catch that)."""


def _copy_error(error: MesosError, timeout: bool = False) -> MesosError:
    # One exception object per future: a shared one would collect every awaiter's traceback.
    return (CallTimeout if timeout else MesosError)(str(error))


def _observe(future: asyncio.Future) -> None:
    # Write errors surface through the reader as a closed stream; just mark them retrieved.
    if not future.cancelled():
        future.exception()


_tcp_client: TCPClient | None = None


async def _connect(target: Target, ssl_context: ssl.SSLContext | None, timeout: float) -> IOStream:
    # TCPClient resolves names in an executor (tornado's DefaultLoopResolver): DNS never blocks.
    global _tcp_client
    if _tcp_client is None:
        _tcp_client = TCPClient()
    stream = await _tcp_client.connect(
        target.host,
        target.port,
        ssl_options=ssl_context if target.scheme == "https" else None,
        timeout=timeout,
        max_buffer_size=1024 * 1024 * 1024,
    )
    stream.set_nodelay(True)
    return stream


def describe_error(e: BaseException) -> str:
    """``Type: message``, never an empty string."""
    text = str(e) or type(e).__name__
    return text if text.startswith(type(e).__name__) else f"{type(e).__name__}: {text}"


def basic_auth_header(principal: str | None, secret: str | None) -> bytes:
    """The ``Authorization`` header line for every request, or nothing without credentials."""
    if principal and secret is not None:
        token = base64.b64encode(f"{principal}:{secret}".encode()).decode()
        return f"Authorization: Basic {token}\r\n".encode()
    return b""


async def load_tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying TLS context; loading CA files reads the disk, so off the loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, lambda: ssl.create_default_context(cafile=ca_file))


async def open_stream(
    target: Target, ssl_context: ssl.SSLContext | None, timeout: float
) -> IOStream:
    """A connection to ``target``, or MesosError saying why there is none."""
    try:
        return await asyncio.wait_for(_connect(target, ssl_context, timeout), timeout)
    except TimeoutError:
        raise MesosError(f"connecting to {target.url} timed out after {timeout:g} s") from None
    except (OSError, ssl.SSLError) as e:
        raise MesosError(f"cannot connect to {target.url}: {describe_error(e)}") from None


async def subscribe(
    stream: IOStream,
    target: Target,
    body: bytes,
    auth_header: bytes,
    path: str = SCHEDULER_PATH,
) -> tuple[dict[str, str], RecordStream]:
    """POST a SUBSCRIBE call; the 200 answer's headers and the records of its streaming body.

    Raises Redirect on a 307 and MesosError, with the master's explanation, on any other status.
    ``path`` is the scheduler endpoint unless another RecordIO stream is subscribed to (the
    localmesos agent's).
    """
    request = (
        (
            f"POST {target.prefix}{path} HTTP/1.1\r\nHost: {target.netloc}\r\n"
            "Content-Type: application/json\r\nAccept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
        ).encode()
        + auth_header
        + b"\r\n"
        + body
    )
    await stream.write(request)
    code, reason, headers = await _read_head(stream)
    if code == 307:
        raise Redirect(headers.get("location", ""))
    if code != 200:
        data, _ = await _read_body(stream, headers, _MAX_ERROR_BODY)
        text = excerpt(data)
        raise MesosError(
            f"SUBSCRIBE at {target.url} answered {code} {reason}" + (f": {text}" if text else ""),
            code,
            text,
        )
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    return headers, RecordStream(chunked)


_MAX_STATE_BODY = 256 * 1024 * 1024  # a large cluster's /master/state runs to tens of MB


async def get_json(
    target: Target,
    path: str,
    *,
    ssl_context: ssl.SSLContext | None,
    auth_header: bytes,
    timeout: float,
    max_redirects: int = 3,
) -> object | None:
    """GET an operator endpoint of the master (``/master/slaves``, ``/master/state``) as JSON,
    with the scheduler's credentials, on a connection of its own; None when it is not served
    (404). A 307 from a master that is not the leader is followed, as SUBSCRIBE's is.

    The path prefix of ``target`` is kept (a master behind a proxy), but a ``/master`` one is
    not: it names the scheduler endpoint's alias, not a proxy.
    """
    return await _operator_request(
        "GET", target, path, None, ssl_context, auth_header, timeout, max_redirects
    )


async def post_json(
    target: Target,
    path: str,
    body: object,
    *,
    ssl_context: ssl.SSLContext | None,
    auth_header: bytes,
    timeout: float,
    max_redirects: int = 3,
) -> object | None:
    """POST a JSON call to an operator endpoint of the master (``/api/v1``: TEARDOWN of another
    framework, ...) with the scheduler's credentials, on a connection of its own; the answer's
    JSON, or None for an empty answer (200/202) or an endpoint that is not served (404). A 307
    is followed with the same call; any other status is a MesosError carrying it."""
    data = json.dumps(body).encode()
    return await _operator_request(
        "POST", target, path, data, ssl_context, auth_header, timeout, max_redirects
    )


async def _operator_request(
    method: str,
    target: Target,
    path: str,
    data: bytes | None,
    ssl_context: ssl.SSLContext | None,
    auth_header: bytes,
    timeout: float,
    max_redirects: int,
) -> object | None:
    prefix = target.prefix.removesuffix("/master")
    what = f"{method} {path}"
    async with asyncio.timeout(timeout):
        for _ in range(max_redirects + 1):
            stream = await open_stream(target, ssl_context, timeout)
            try:
                head = (
                    f"{method} {prefix}{path} HTTP/1.1\r\nHost: {target.netloc}\r\n"
                    "Accept: application/json\r\nConnection: close\r\n"
                )
                if data is not None:
                    head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                await stream.write(head.encode() + auth_header + b"\r\n" + (data or b""))
                code, reason, headers = await _read_head(stream)
                if code == 307:
                    try:
                        leader = target.redirect(headers.get("location", ""))
                    except ValueError as e:
                        raise MesosError(f"{method} {target.url}{path}: {e}") from None
                    target = Target(leader.scheme, leader.host, leader.port, target.prefix)
                    continue
                body, _ = await _read_body(stream, headers, _MAX_STATE_BODY)
            except StreamClosedError as e:
                why = describe_error(e.real_error) if e.real_error else "connection closed"
                raise MesosError(f"{method} {target.url}{path}: {why}") from None
            except BadResponse as e:
                raise MesosError(f"{method} {target.url}{path}: bad HTTP response: {e}") from None
            finally:
                stream.close()
            if code == 404:
                return None
            if code not in (200, 202):
                text = excerpt(body)
                raise MesosError(
                    f"{method} {target.url}{path} answered {code} {reason}"
                    + (f": {text}" if text else ""),
                    code,
                    text,
                )
            if not body.strip():
                return None
            try:
                return json.loads(body)
            except ValueError as e:
                raise MesosError(
                    f"{method} {target.url}{path}: the answer is not JSON ({e})"
                ) from None
        raise MesosError(f"{what}: too many redirects, last to {target.url}")
