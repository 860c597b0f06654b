"""An asyncio client for the Mesos v1 scheduler HTTP API.

One SUBSCRIBE stream per client, read with tornado's IOStream into the incremental RecordIO
decoder; events reach the owner's ``EventHandler`` in order through a single consumer task, so a
slow handler never reorders events and never stops the read for longer than a bounded queue
allows. Calls are JSON POSTs pipelined over one keep-alive connection to the master the stream
is on, so they arrive in the order they were made and an acknowledgement costs no round trip.

Unlike pymesos, nothing here blocks the loop or runs on a thread, a handler that raises is
logged and contained (never a TEARDOWN), a silent master is detected by a heartbeat watchdog,
and the client reconnects with exponential backoff and jitter, following 307 redirects and the
detector (static list or ZooKeeper) to the leader, re-subscribing under the same framework id. A
new leader gets quick tries: its 503s while it recovers are retried every quarter second.
Speaking HTTP to the master is ``http``'s job.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import ssl
from collections.abc import Awaitable, Callable

from tornado.iostream import IOStream, StreamClosedError

from . import events, recordio
from .detector import Detector, ZooKeeperDetector, make_detector
from .handler import EventHandler
from .http import (
    CallPipe,
    MesosError,
    RecordStream,
    Redirect,
    Target,
    basic_auth_header,
    describe_error,
    excerpt,
    get_json,
    load_tls_context,
    open_stream,
    post_json,
    subscribe,
)
from .wire import id_json, number, value_of

__all__ = ["EventHandler", "MesosError", "NotSubscribed", "SchedulerClient"]

_scan_json = json.JSONDecoder().scan_once  # the C scanner, without json.loads's per-call checks

# The EventHandler method each event type goes to.
_HANDLER_METHODS = {
    events.TaskStatus: "update",
    events.Offers: "offers",
    events.Rescind: "rescind",
    events.Error: "error",
    events.Failure: "failure",
    events.Message: "message",
    events.InverseOffers: "inverse_offers",
    events.RescindInverseOffer: "rescind_inverse_offer",
}
_READ_SIZE = 64 * 1024
_QUEUE_SIZE = 8  # batches (one per read, at most _READ_SIZE bytes) between reader and handler
_MAX_BACKLOG = 512  # unanswered calls before acknowledgements hold the consumer back
_MAX_REDIRECTS = 3
_YIELD_EVERY = 0.005  # seconds of work before yielding to the loop
_SMALL_READ = 8192  # bytes: a read this small is followed by a short wait for more
_COALESCE = 0.001  # seconds of that wait (added latency, at most, per burst of events)
_BACKOFF_MIN = 0.1
_HEALTHY_SESSION = 5.0  # seconds a stream must live before backoff and log memory reset
# A master that answers SUBSCRIBE 503 ("Master has not finished recovery", "No leader elected")
# is a new leader reading its registry, usually for well under a second: try it again this
# often, this many times, before the exponential backoff applies (issue 19 item 13).
_RECOVERY_RETRY = 0.25
_RECOVERY_TRIES = 40
OPERATOR_PATH = "/api/v1"  # the master's operator API (calls about other frameworks)


class NotSubscribed(MesosError):
    """The client has no subscribed stream (yet): wait_subscribed() first."""


class _StreamBroken(Exception):
    """The stream carried something that is not a well-formed Mesos event."""


class _Session:
    """One connection attempt and, if it succeeds, one subscribed stream."""

    def __init__(self, target: Target, stream: IOStream, started: float) -> None:
        self.target = target
        self.stream = stream
        self.stream_id: str | None = None
        self.subscribed = False
        self.last_activity = started
        self.allowance = 0.0  # seconds of silence tolerated
        self.blocked = False  # the reader waits for the handler: silence is ours, not the master's
        self.abort_reason: str | None = None
        self.subscribed_at = 0.0
        self.calls: CallPipe | None = None
        self.call_headers = b""

    def abort(self, reason: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = reason
        self.stream.close()


class SchedulerClient:
    """A Mesos v1 scheduler: subscription, liveness and calls; decisions stay with the handler."""

    def __init__(
        self,
        master: str,
        framework_info: dict,
        handler: EventHandler,
        *,
        principal: str | None = None,
        secret: str | None = None,
        ca_file: str | None = None,
        heartbeat_misses: int = 3,
        backoff_max: float = 10.0,
        request_timeout: float = 20.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.master = master
        self.framework_info = dict(framework_info)
        self.handler = handler
        self.framework_id: str | None = value_of(self.framework_info.get("id"))
        self.heartbeat_misses = heartbeat_misses
        self.backoff_max = backoff_max
        self.request_timeout = request_timeout
        self.log = log or logging.getLogger(__name__)
        self.master_info: dict | None = None
        self.heartbeat_interval: float | None = None
        self._principal = principal
        self._auth_header = basic_auth_header(principal, secret)
        if principal:
            self.framework_info.setdefault("principal", principal)
        self._ca_file = ca_file
        self._ssl_context: ssl.SSLContext | None = None
        # Validates the address now (a typo should fail at construction, not in a log line).
        self._detector: Detector = self._make_detector()
        self._session: _Session | None = None
        self._leader: Target | None = None  # the master of the last subscription
        self._queue: asyncio.Queue | None = None
        self._run_task: asyncio.Task | None = None
        self._consumer_task: asyncio.Task | None = None
        self._acks: set[asyncio.Future] = set()
        self._subscribed_event: asyncio.Event | None = None
        self._wakeup: asyncio.Event | None = None
        self._stopping = False
        self._tearing_down = False
        self._recovering = False  # the last SUBSCRIBE was answered 503 (a master recovering)
        self._problems_seen: set[str] = set()
        self._last_session_lasted = 0.0
        self._handler_errors_seen: set[tuple] = set()
        self._unknown_events_seen: set[str] = set()

    # ------------------------------------------------------------ lifecycle

    @property
    def subscribed(self) -> bool:
        session = self._session
        return bool(session and session.subscribed and not session.stream.closed())

    async def start(self) -> None:
        """Start connecting and subscribing in the background; returns immediately."""
        if self._run_task is not None and not self._run_task.done():
            return
        self._stopping = False
        self._queue = asyncio.Queue(_QUEUE_SIZE)
        self._subscribed_event = asyncio.Event()
        self._wakeup = asyncio.Event()
        if self._detector is None:
            self._detector = self._make_detector()
        self._consumer_task = asyncio.create_task(self._consume(), name="mesos-events")
        self._run_task = asyncio.create_task(self._run(), name="mesos-subscription")

    async def wait_subscribed(self, timeout: float | None = None) -> None:
        """Wait until a stream is subscribed; raises TimeoutError after ``timeout`` seconds."""
        if self._subscribed_event is None:
            raise NotSubscribed("the client has not been started: call start() first")
        async with asyncio.timeout(timeout):
            while not self.subscribed:
                self._subscribed_event.clear()
                await self._subscribed_event.wait()

    async def stop(self) -> None:
        """Close the stream and stop reconnecting. Does not tear the framework down: its tasks
        keep running for ``failover_timeout``."""
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.set()
        current = asyncio.current_task()
        consumer, self._consumer_task = self._consumer_task, None
        if consumer is not None and consumer is not current:
            consumer.cancel()
            await asyncio.gather(consumer, return_exceptions=True)
        if self._acks:
            # Acknowledgements still need the stream; give them a moment to finish.
            await asyncio.wait(set(self._acks), timeout=min(2.0, self.request_timeout))
        session = self._session
        if session is not None:
            session.abort("client stopped")
        run, self._run_task = self._run_task, None
        if run is not None and run is not current:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        detector, self._detector = self._detector, None
        if detector is not None:
            await detector.stop()

    async def teardown(self) -> None:
        """TEARDOWN: the master kills every task of the framework and forgets it."""
        # The master ends the stream at once: that is neither a disconnection nor a reason to
        # re-subscribe under an id that no longer exists. Real Mesos ends it BEFORE answering
        # the call, so the call connection must outlive the stream until the answer is in.
        session = self._session
        calls = session.calls if session is not None else None
        self._tearing_down = True
        try:
            await self._call("TEARDOWN", None, None)
        except BaseException:
            self._tearing_down = False
            raise
        finally:
            if calls is not None and (self._session is not session or self._tearing_down):
                calls.close()
        self.framework_id = None
        await self.stop()
        self._tearing_down = False

    # ------------------------------------------------------------ calls

    async def accept(
        self, offer_ids: list[str], operations: list[dict], filters: dict | None = None
    ) -> None:
        body: dict = {"offer_ids": [id_json(o) for o in offer_ids], "operations": operations}
        if filters is not None:
            body["filters"] = filters
        await self._call("ACCEPT", "accept", body)

    async def launch(
        self, offer_ids: list[str], task_infos: list[dict], filters: dict | None = None
    ) -> None:
        """ACCEPT with one LAUNCH operation."""
        operation = {"type": "LAUNCH", "launch": {"task_infos": task_infos}}
        await self.accept(offer_ids, [operation], filters)

    async def decline(self, offer_ids: list[str], filters: dict | None = None) -> None:
        body: dict = {"offer_ids": [id_json(o) for o in offer_ids]}
        if filters is not None:
            body["filters"] = filters
        await self._call("DECLINE", "decline", body)

    async def answer_inverse_offers(
        self, accept: bool, inverse_offer_ids: list[str], filters: dict | None = None
    ) -> None:
        """ACCEPT_INVERSE_OFFERS (the resources can be given back before the maintenance) or
        DECLINE_INVERSE_OFFERS (they cannot)."""
        call = "ACCEPT_INVERSE_OFFERS" if accept else "DECLINE_INVERSE_OFFERS"
        body: dict = {"inverse_offer_ids": [id_json(i) for i in inverse_offer_ids]}
        await self._call(
            call, call.lower(), body if filters is None else {**body, "filters": filters}
        )

    async def revive(self, roles: list[str] | None = None) -> None:
        """Remove filters and resume offers, for ``roles`` or (None) every role."""
        await self._call("REVIVE", "revive", {"roles": list(roles)} if roles else {})

    async def suppress(self, roles: list[str] | None = None) -> None:
        """Stop offers for ``roles`` or (None) every role, until REVIVE."""
        await self._call("SUPPRESS", "suppress", {"roles": list(roles)} if roles else {})

    async def kill(
        self, task_id: str, agent_id: str | None = None, kill_policy: dict | None = None
    ) -> None:
        body: dict = {"task_id": id_json(task_id)}
        if agent_id:
            body["agent_id"] = id_json(agent_id)
        if kill_policy is not None:
            body["kill_policy"] = kill_policy
        await self._call("KILL", "kill", body)

    async def acknowledge(self, agent_id: str, task_id: str, uuid: str) -> None:
        """``uuid`` as it came in the status (base64)."""
        body = {"agent_id": id_json(agent_id), "task_id": id_json(task_id), "uuid": uuid}
        await self._call("ACKNOWLEDGE", "acknowledge", body)

    async def reconcile(self, tasks: list[tuple[str, str | None]] | None = None) -> None:
        """Explicit for ``[(task_id, agent_id or None), ...]``; implicit (all tasks) if empty."""
        entries = []
        for task_id, agent_id in tasks or ():
            entry = {"task_id": id_json(task_id)}
            if agent_id:
                entry["agent_id"] = id_json(agent_id)
            entries.append(entry)
        await self._call("RECONCILE", "reconcile", {"tasks": entries})

    # ------------------------------------------------------------ operator reads

    @property
    def leader(self) -> Target | None:
        """The master this client is (or was last) subscribed to: the leader, as far as known."""
        return self._leader

    async def get_json(self, path: str, timeout: float = 10.0) -> object | None:
        """GET an operator endpoint of the leading master (``/master/slaves``,
        ``/master/state?framework_id=...``) as JSON, with this client's credentials and TLS;
        None when the master does not serve it. MesosError (or TimeoutError) otherwise."""
        target = await self._operator_target(f"GET {path}")
        auth, tls = self._auth_header, self._ssl_context
        return await get_json(target, path, ssl_context=tls, auth_header=auth, timeout=timeout)

    async def operator_call(self, call: dict, timeout: float = 10.0) -> object | None:
        """POST ``call`` to the leading master's operator API (``/api/v1``; e.g. TEARDOWN of
        another framework) with this client's credentials and TLS; its JSON answer or None.
        MesosError (``code`` 403: no ACL allows it) or TimeoutError otherwise."""
        target = await self._operator_target(f"{call.get('type')} call")
        auth, tls = self._auth_header, self._ssl_context
        return await post_json(
            target, OPERATOR_PATH, call, ssl_context=tls, auth_header=auth, timeout=timeout
        )

    async def _operator_target(self, what: str) -> Target:
        target = self._leader
        if target is None:
            why = f"no leading Mesos master known yet ({self._detector_text()})"
            raise NotSubscribed(f"{what}: {why}")
        if target.scheme == "https" and self._ssl_context is None:
            self._ssl_context = await load_tls_context(self._ca_file)
        return target

    async def update_framework(self, framework_info: dict) -> None:
        """UPDATE_FRAMEWORK; later re-subscriptions use the new FrameworkInfo too."""
        info = dict(framework_info)
        if self._principal:
            info.setdefault("principal", self._principal)
        if self.framework_id:
            info["id"] = id_json(self.framework_id)
        await self._call("UPDATE_FRAMEWORK", "update_framework", {"framework_info": info})
        info.pop("id", None)
        self.framework_info = info

    async def send_message(self, agent_id: str, executor_id: str, data: bytes) -> None:
        body = {
            "agent_id": id_json(agent_id),
            "executor_id": id_json(executor_id),
            "data": base64.b64encode(data).decode(),
        }
        await self._call("MESSAGE", "message", body)

    async def _call(self, call_type: str, key: str | None, body: dict | None) -> None:
        future, target = self._submit(call_type, key, body)
        try:
            code, reason, data = await future
        except MesosError as e:
            raise type(e)(f"{call_type}: {e}") from None
        _check_answer(call_type, target, code, reason, data)

    def _submit(
        self, call_type: str, key: str | None, body: dict | None
    ) -> tuple[asyncio.Future, Target]:
        session = self._session
        if session is None or not session.subscribed or session.calls is None:
            raise NotSubscribed(
                f"{call_type}: not subscribed to a Mesos master ({self._detector_text()}); "
                "wait_subscribed() first"
            )
        call: dict = {"type": call_type, "framework_id": id_json(self.framework_id)}
        if key is not None:
            call[key] = body
        headers = session.call_headers
        return session.calls.submit(headers, json.dumps(call).encode()), session.target

    # ------------------------------------------------------------ subscription loop

    def _make_detector(self) -> Detector:
        scheme = "https" if self._ca_file else "http"
        return make_detector(self.master, scheme=scheme, log=self.log)

    def _detector_text(self) -> str:
        return self._detector.describe() if self._detector else self.master

    def _problem(self, cause: str) -> None:
        """Log each distinct failure once (until a stream has stayed up for a while)."""
        if cause in self._problems_seen:
            self.log.debug("Mesos: %s (again)", cause)
        else:
            self._problems_seen.add(cause)
            self.log.warning("Mesos: %s; retrying", cause)

    async def _run(self) -> None:
        backoff = _BACKOFF_MIN
        preferred: Target | None = None
        leaders: list[str] = []
        recovery_tries = 0
        while not self._stopping:
            if self._tearing_down:
                await self._sleep(_BACKOFF_MIN, self._detector)
                continue
            detector = self._detector
            try:
                await detector.start()
            except Exception as e:  # noqa: BLE001 - ZooKeeper may be down; keep trying
                self._problem(f"cannot reach {detector.describe()}: {describe_error(e)}")
                await self._sleep(backoff, detector)
                backoff = min(backoff * 2, self.backoff_max)
                continue
            detector.changed.clear()
            if detector.candidates() != leaders:
                # A new leader (or list) deserves quick first tries, whatever the old one cost.
                leaders = detector.candidates()
                backoff = _BACKOFF_MIN
                recovery_tries = 0
            targets: list[Target] = []
            for url in detector.candidates():
                try:
                    targets.append(Target.parse(url))
                except ValueError as e:
                    self._problem(str(e))
            if preferred is not None and preferred in targets:
                targets.remove(preferred)
                targets.insert(0, preferred)
            elif preferred is not None and len(targets) > 1:
                targets.insert(0, preferred)
            if not targets:
                self._problem(f"no leading Mesos master known yet ({detector.describe()})")
            was_subscribed = False
            self._recovering = False
            for target in targets:
                if self._stopping:
                    return
                leader, was_subscribed = await self._try_target(target)
                if was_subscribed:
                    preferred = leader
                    break
                if detector.changed.is_set():
                    break
            if self._stopping:
                return
            healthy = was_subscribed and self._last_session_lasted >= _HEALTHY_SESSION
            if healthy:
                # A stream that worked for a while: reconnect at once, report anew.
                backoff = _BACKOFF_MIN
                recovery_tries = 0
                self._problems_seen.clear()
            if not was_subscribed and self._recovering and recovery_tries < _RECOVERY_TRIES:
                # The leader is recovering: it will take us in a moment, not in `backoff`.
                recovery_tries += 1
                await self._sleep(_RECOVERY_RETRY, detector)
                continue
            await self._sleep(backoff, detector)
            if not healthy:
                # Includes a master that subscribes and then fails at once: no tight loop.
                backoff = min(backoff * 2, self.backoff_max)

    async def _sleep(self, backoff: float, detector: Detector) -> None:
        """Jittered backoff, cut short by a leader change or stop()."""
        delay = random.uniform(backoff / 2, backoff)
        wakeup = self._wakeup
        waiters = [asyncio.ensure_future(detector.changed.wait())]
        if wakeup is not None:
            waiters.append(asyncio.ensure_future(wakeup.wait()))
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _try_target(self, target: Target) -> tuple[Target, bool]:
        """Subscribe at ``target`` (following redirects) and read until the stream ends.

        Returns the last master tried and whether a subscription was established.
        """
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                return target, await self._session_at(target)
            except Redirect as r:
                try:
                    leader = target.redirect(r.location)
                except ValueError as e:
                    self._problem(f"{target.url} redirected badly: {e}")
                    return target, False
                self.log.info(
                    "Mesos master %s is not the leader; following to %s", target.url, leader.url
                )
                target = leader
            except (MesosError, _StreamBroken) as e:
                if isinstance(e, MesosError) and e.code == 503:
                    self._recovering = True
                self._problem(str(e))
                return target, False
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure means: try again later
                self._problem(f"subscribing at {target.url} failed: {describe_error(e)}")
                return target, False
        self._problem(f"too many redirects, last to {target.url}")
        return target, False

    async def _session_at(self, target: Target) -> bool:
        loop = asyncio.get_running_loop()
        if target.scheme == "https" and self._ssl_context is None:
            self._ssl_context = await load_tls_context(self._ca_file)
        started = loop.time()
        stream = await open_stream(target, self._ssl_context, self.request_timeout)
        session = _Session(target, stream, started)
        session.allowance = self.request_timeout
        self._session = session
        watchdog = asyncio.create_task(self._watchdog(session), name="mesos-watchdog")
        try:
            await self._subscribe_and_read(session)
            reason = session.abort_reason or "the master ended the stream"
        except StreamClosedError as e:
            reason = session.abort_reason or _closed_reason(target, e)
            if not session.subscribed:
                raise MesosError(f"SUBSCRIBE at {target.url}: {reason}") from None
        except (recordio.RecordIOError, _StreamBroken) as e:
            reason = f"bad data from {target.url}: {e}"
            if not session.subscribed:
                raise _StreamBroken(reason) from None
        finally:
            watchdog.cancel()
            stream.close()
            if session.calls is not None and not self._tearing_down:
                # (During a teardown, teardown() closes it once the call is answered.)
                session.calls.close()
            if self._session is session:
                self._session = None
            if session.subscribed:
                self._last_session_lasted = loop.time() - session.subscribed_at
        if session.subscribed and not self._stopping and not self._tearing_down:
            self._problem(f"lost the stream from {target.url}: {reason}")
            await self._enqueue([("disconnected", reason)])
        return session.subscribed

    async def _watchdog(self, session: _Session) -> None:
        """Abort a silent stream, and one whose master the detector no longer names leader."""
        loop = asyncio.get_running_loop()
        detector = self._detector
        while True:
            if detector is not None and detector.changed.is_set():
                detector.changed.clear()
                leaders = detector.candidates()
                if session.subscribed and isinstance(detector, ZooKeeperDetector) and leaders:
                    if session.target.url not in leaders:
                        session.abort(f"the leading master is now {leaders[0]}")
                        return
            remaining = session.last_activity + session.allowance - loop.time()
            if remaining <= 0:
                if session.blocked:
                    session.last_activity = loop.time()
                    continue
                if session.subscribed:
                    reason = f"no event (not even a heartbeat) for {number(session.allowance)} s"
                else:
                    reason = f"no SUBSCRIBED event within {number(session.allowance)} s"
                session.abort(reason)
                return
            # Never sleep long: SUBSCRIBED replaces the allowance (request_timeout) with the
            # heartbeat-based one, which may be much shorter.
            nap = min(max(remaining, 0.01), 1.0)
            if detector is None:
                await asyncio.sleep(nap)
                continue
            try:
                async with asyncio.timeout(nap):
                    await detector.changed.wait()
            except TimeoutError:
                pass

    async def _subscribe_and_read(self, session: _Session) -> None:
        stream, target = session.stream, session.target
        info = dict(self.framework_info)
        call: dict = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
        if self.framework_id:
            info["id"] = id_json(self.framework_id)
            call["framework_id"] = id_json(self.framework_id)
        else:
            info.pop("id", None)
        headers, records = await subscribe(
            stream, target, json.dumps(call).encode(), self._auth_header
        )
        session.stream_id = headers.get("mesos-stream-id")
        if not session.stream_id:
            raise _StreamBroken(f"SUBSCRIBE at {target.url} answered without a Mesos-Stream-Id")
        await self._read_events(session, records)

    async def _read_events(self, session: _Session, records: RecordStream) -> None:
        loop = asyncio.get_running_loop()
        stream = session.stream
        queue = self._queue
        assert queue is not None
        last_yield = loop.time()
        while True:
            data = await stream.read_bytes(_READ_SIZE, partial=True)
            session.last_activity = loop.time()
            # One queue entry per read, not per event: the hand-over costs as much as an event.
            batch = []
            for record in records.feed(data):
                item = self._parse_event(session, record)
                if item is not None:
                    batch.append(item)
            if batch:
                if queue.full():
                    session.blocked = True
                    try:
                        await queue.put(batch)
                    finally:
                        session.blocked = False
                        session.last_activity = loop.time()
                else:
                    queue.put_nowait(batch)
            if records.done:
                return
            # Data already buffered completes reads without yielding: share the loop.
            if loop.time() - last_yield > _YIELD_EVERY:
                await asyncio.sleep(0)
                last_yield = loop.time()
            elif len(data) < _SMALL_READ:
                # A master writes event by event: let a few accumulate rather than pay a read,
                # a task switch and a hand-over per event or two (about 60 us each).
                await asyncio.sleep(_COALESCE)

    def _parse_event(self, session: _Session, record: bytes) -> tuple | None:
        """A record -> (handler method name, typed event), or None for events not passed on."""
        try:
            text = record.decode()
            data, end = _scan_json(text, 0)
            if end != len(text) and text[end:].strip():
                raise ValueError(f"extra data at character {end}")
        except StopIteration as e:
            raise _StreamBroken(
                f"event is not JSON (nothing parsable at character {e.value}): "
                f"{excerpt(record, 200)!r}"
            ) from None
        except ValueError as e:
            raise _StreamBroken(f"event is not JSON ({e}): {excerpt(record, 200)!r}") from None
        try:
            event = events.parse(data)
        except events.MalformedEvent as e:
            raise _StreamBroken(f"{e}: {excerpt(record, 200)!r}") from None
        if event is None:
            kind = data["type"]
            if not events.known(kind) and kind not in self._unknown_events_seen:
                self._unknown_events_seen.add(kind)
                self.log.warning(
                    "Ignoring Mesos event of unknown type %r from %s", kind, session.target.url
                )
            return None
        if isinstance(event, events.Heartbeat):
            return None
        if isinstance(event, events.Error):
            # Logged once: a removed framework gets the same ERROR at every re-subscription.
            self._problem(f"the master at {session.target.url} reports an error: {event.message}")
        if not isinstance(event, events.Subscribed):
            return (_HANDLER_METHODS[type(event)], event)
        framework_id, interval = event.framework_id, event.heartbeat_interval
        # SUBSCRIBED: the session becomes usable for calls right away, before the handler runs.
        self.framework_id = framework_id
        self.master_info = event.master_info
        self.heartbeat_interval = interval
        session.allowance = self.heartbeat_misses * interval
        if session.calls is not None:
            session.calls.close()
        session.calls = CallPipe(session.target, self._ssl_context, self.request_timeout)
        session.call_headers = (
            f"Mesos-Stream-Id: {session.stream_id}\r\n".encode() + self._auth_header
        )
        session.subscribed = True
        session.subscribed_at = asyncio.get_running_loop().time()
        self._leader = session.target
        self.log.info(
            "Subscribed to the Mesos master at %s as framework %s (heartbeat every %g s)",
            session.target.url,
            framework_id,
            interval,
        )
        if self._subscribed_event is not None:
            self._subscribed_event.set()
        return ("subscribed", event)

    async def _enqueue(self, batch: list[tuple]) -> None:
        if self._queue is not None:
            await self._queue.put(batch)

    # ------------------------------------------------------------ event consumer

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        queue = self._queue
        assert queue is not None
        handler = self.handler
        last_yield = loop.time()
        while not self._stopping:
            for name, arg in await queue.get():
                if self._stopping:
                    return
                try:
                    method: Callable[..., Awaitable[None]] = getattr(handler, name)
                    await method(arg)
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if self._stopping or (task is not None and task.cancelling()):
                        raise
                    self._handler_failed(name, None)
                except Exception as e:  # noqa: BLE001 - a handler bug must not stop the stream
                    self._handler_failed(name, e)
                if name == "update" and arg.uuid is not None:
                    await self._acknowledge_later(arg)
                now = loop.time()
                if now - last_yield > _YIELD_EVERY:
                    await asyncio.sleep(0)
                    last_yield = loop.time()

    def _handler_failed(self, name: str, e: Exception | None) -> None:
        key = (name, type(e).__name__, str(e)[:200])
        if key in self._handler_errors_seen:
            self.log.debug("Mesos event handler %s failed again: %r", name, e)
            return
        self._handler_errors_seen.add(key)
        self.log.error(
            "Mesos event handler %s raised (contained; the stream goes on)",
            name,
            exc_info=e or True,
        )

    async def _acknowledge_later(self, status: events.TaskStatus) -> None:
        """Acknowledge without waiting for the answer, so the next event need not wait for it;
        only a long backlog of unanswered calls holds the consumer back."""
        agent_id, task_id, uuid = status.agent_id, status.task_id, status.uuid
        if not agent_id or not task_id:
            self._problem(
                f"cannot acknowledge a status without agent_id/task_id: {status.raw!r:.200}"
            )
            return
        session = self._session
        if session is not None and session.calls is not None:
            await session.calls.room(_MAX_BACKLOG)
        body = {"agent_id": id_json(agent_id), "task_id": id_json(task_id), "uuid": uuid}
        try:
            future, target = self._submit("ACKNOWLEDGE", "acknowledge", body)
        except NotSubscribed as e:
            # The agent resends unacknowledged updates, so a lost acknowledgement is harmless.
            self._problem(f"acknowledging status updates failed: {e}")
            return
        self._acks.add(future)
        future.add_done_callback(lambda f: self._acknowledged(f, target))

    def _acknowledged(self, future: asyncio.Future, target: Target) -> None:
        self._acks.discard(future)
        try:
            _check_answer("ACKNOWLEDGE", target, *future.result())
        except asyncio.CancelledError:
            pass
        except MesosError as e:
            self._problem(f"acknowledging status updates failed: {e}")


def _check_answer(call_type: str, target: Target, code: int, reason: str, data: bytes) -> None:
    """Raise MesosError unless the master accepted the call (2xx)."""
    if 200 <= code < 300:
        return
    text = excerpt(data)
    message = f"{call_type} rejected by the Mesos master at {target.url}: {code} {reason}"
    if text:
        message += f": {text}"
    if code == 307:
        message += " (it is no longer the leader; the client will follow)"
    kind = NotSubscribed if code == 403 and "subscribed" in text.lower() else MesosError
    raise kind(message, code, text)


def _closed_reason(target: Target, e: StreamClosedError) -> str:
    real = e.real_error
    if real is not None:
        return f"connection lost: {describe_error(real)}"
    return "the master closed the connection"
