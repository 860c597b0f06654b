"""What someone on a notebook can try against Mesos: register a framework, launch a task as some
user, tear a framework down, read an agent, fetch a sandbox file, write ZooKeeper.

Each attempt returns what the cluster answered (an ``Outcome``), so a test asserts the refusal
and its positive control (the same request with the right credentials) alike, and a failing
test says what was answered. Credentials are ``(principal, secret)`` or None (anonymous).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from mesosspawner.mesos import events
from mesosspawner.mesos.client import EventHandler, SchedulerClient

Auth = tuple[str, str] | None


@dataclass(frozen=True)
class Outcome:
    """An HTTP status (0 when there was no HTTP answer to the attempt itself) and what came
    with it: a body excerpt, an ERROR event's message or a task's state and message."""

    code: int
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.code} {self.detail[:300]}"


def auth_headers(auth: Auth) -> dict[str, str]:
    if auth is None:
        return {}
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


async def http(
    method: str,
    url: str,
    auth: Auth = None,
    body: bytes | None = None,
    content_type: str | None = None,
    timeout: float = 15,
) -> Outcome:
    """One request; the answer's status and (at most 64 kB of) its body."""
    headers = auth_headers(auth)
    if content_type:
        headers["Content-Type"] = content_type
    request = HTTPRequest(
        url,
        method=method,
        body=body if body is not None or method != "POST" else b"",
        headers=headers,
        request_timeout=timeout,
        connect_timeout=timeout,
        follow_redirects=False,
    )
    client = AsyncHTTPClient(force_instance=True)
    try:
        response = await client.fetch(request, raise_error=False)
    finally:
        client.close()
    if response.code == 599:
        raise ConnectionError(f"{method} {url}: {response.error}")
    return Outcome(response.code, (response.body or b"")[:65536].decode(errors="replace"))


async def get_json(url: str, auth: Auth = None) -> dict:
    outcome = await http("GET", url, auth)
    assert outcome.code == 200, f"GET {url}: {outcome}"
    return json.loads(outcome.detail)


# ---------------------------------------------------------------- the operator's endpoints


async def teardown_endpoint(master_url: str, framework_id: str, auth: Auth) -> Outcome:
    """``POST /master/teardown`` (form ``frameworkId=...``): the operator endpoint."""
    body = urlencode({"frameworkId": framework_id}).encode()
    return await http(
        "POST",
        f"{master_url}/master/teardown",
        auth,
        body,
        "application/x-www-form-urlencoded",
    )


async def teardown_operator_api(master_url: str, framework_id: str, auth: Auth) -> Outcome:
    """The v1 operator API's ``TEARDOWN`` call (``POST /api/v1``)."""
    call = {"type": "TEARDOWN", "teardown": {"framework_id": {"value": framework_id}}}
    return await http(
        "POST", f"{master_url}/api/v1", auth, json.dumps(call).encode(), "application/json"
    )


async def teardown_scheduler_call(master_url: str, framework_id: str, auth: Auth) -> Outcome:
    """A scheduler ``TEARDOWN`` call naming ``framework_id``, without its stream (which only
    its scheduler holds): what anyone who read the framework id can send."""
    call = {"type": "TEARDOWN", "framework_id": {"value": framework_id}}
    headers_auth = auth
    request = HTTPRequest(
        f"{master_url}/api/v1/scheduler",
        method="POST",
        body=json.dumps(call).encode(),
        headers={
            **auth_headers(headers_auth),
            "Content-Type": "application/json",
            "Mesos-Stream-Id": str(uuid.uuid4()),
        },
        request_timeout=15,
        follow_redirects=False,
    )
    client = AsyncHTTPClient(force_instance=True)
    try:
        response = await client.fetch(request, raise_error=False)
    finally:
        client.close()
    return Outcome(response.code, (response.body or b"").decode(errors="replace"))


async def anonymous_subscribe(master_url: str, roles=("*",), user: str = "root") -> Outcome:
    """A SUBSCRIBE without credentials (refused ones answer at once, with no stream)."""
    info = {"user": user, "name": "anonymous", "roles": list(roles)}
    info["capabilities"] = [{"type": "MULTI_ROLE"}]
    call = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
    return await http(
        "POST",
        f"{master_url}/api/v1/scheduler",
        None,
        json.dumps(call).encode(),
        "application/json",
        timeout=5,
    )


# ---------------------------------------------------------------- agents


def sandbox_path(framework_id: str, executor_id: str) -> str:
    """The agent's virtual path of an executor's latest run (``/files/browse?path=``)."""
    return f"/frameworks/{framework_id}/executors/{executor_id}/runs/latest"


async def download(agent_url: str, path: str, auth: Auth) -> Outcome:
    return await http("GET", f"{agent_url}/files/download?{urlencode({'path': path})}", auth)


# ---------------------------------------------------------------- a framework of one's own


class _Captured(logging.Handler):
    """The scheduler client's warnings: how a refused SUBSCRIBE (HTTP 4xx) shows."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.changed.set()


@dataclass
class ProbeFramework(EventHandler):
    """A scheduler someone holding ``auth`` could run (our client, their credentials)."""

    master: str
    auth: Auth
    roles: tuple[str, ...] = ("*",)
    name: str = "probe"
    framework_id: str | None = None  # set: re-subscribe as that framework (a failover)
    principal: str | None = None  # FrameworkInfo.principal (default: the authenticated one)
    errors: list[str] = field(default_factory=list)
    statuses: dict[str, list[events.TaskStatus]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._offers: asyncio.Queue[events.Offer] = asyncio.Queue()
        self._event = asyncio.Event()
        self._captured = _Captured()
        self.log = logging.getLogger(f"intruders.{self.name}.{uuid.uuid4().hex[:6]}")
        self.log.addHandler(self._captured)
        self.log.propagate = False
        info: dict = {
            "user": "nobody",
            "name": self.name,
            "roles": list(self.roles),
            "failover_timeout": 0,
            "capabilities": [{"type": "MULTI_ROLE"}],
        }
        principal = self.principal or (self.auth[0] if self.auth else None)
        if principal:
            info["principal"] = principal
        if self.framework_id:
            info["id"] = {"value": self.framework_id}
        self.client = SchedulerClient(
            self.master,
            info,
            self,
            principal=self.auth[0] if self.auth else None,
            secret=self.auth[1] if self.auth else None,
            backoff_max=1.0,
            log=self.log,
        )

    # ---- EventHandler
    async def subscribed(self, event: events.Subscribed) -> None:
        self._event.set()

    async def offers(self, event: events.Offers) -> None:
        for offer in event.offers:
            self._offers.put_nowait(offer)

    async def update(self, status: events.TaskStatus) -> None:
        self.statuses.setdefault(status.task_id, []).append(status)
        self._event.set()

    async def error(self, event: events.Error) -> None:
        self.errors.append(event.message)
        self._event.set()

    # ---- what a test calls
    async def subscribe(self, timeout: float = 30) -> Outcome:
        """Start and wait for the master's answer: ``200 SUBSCRIBED <id>``, ``200 ERROR <msg>``
        (the stream carried an ERROR event) or the HTTP refusal the client logged."""
        await self.client.start()
        async with asyncio.timeout(timeout):
            while True:
                if self.client.subscribed and self.client.framework_id:
                    return Outcome(200, f"SUBSCRIBED {self.client.framework_id}")
                if self.errors:
                    return Outcome(200, f"ERROR {self.errors[0]}")
                for message in self._captured.messages:
                    if "answered" in message or "rejected" in message:
                        code = _status_in(message)
                        if code:
                            return Outcome(code, message)
                self._event.clear()
                self._captured.changed.clear()
                waits = [
                    asyncio.ensure_future(self._event.wait()),
                    asyncio.ensure_future(self._captured.changed.wait()),
                ]
                await asyncio.wait(waits, timeout=0.2, return_when=asyncio.FIRST_COMPLETED)
                for w in waits:
                    w.cancel()

    async def launch_as(self, user: str, timeout: float = 60) -> Outcome:
        """Launch ``sleep 600`` as ``user`` on the next offer; ``0 TASK_RUNNING`` or the first
        terminal state with its message."""
        task_id = f"probe-{user}-{uuid.uuid4().hex[:8]}"
        async with asyncio.timeout(timeout):
            offer = await self._offers.get()
            resources = _small_share(offer.raw)
            task = {
                "name": task_id,
                "task_id": {"value": task_id},
                "agent_id": {"value": offer.agent_id},
                "resources": resources,
                "command": {"value": "sleep 600", "shell": True, "user": user},
            }
            await self.client.launch([offer.id], [task])
            while True:
                for status in self.statuses.get(task_id, []):
                    if status.state == "TASK_RUNNING" or status.state in _TERMINAL:
                        return Outcome(0, f"{status.state} {status.message or ''}".strip())
                self._event.clear()
                await self._event.wait()

    async def teardown(self) -> None:
        await self.client.teardown()

    async def stop(self) -> None:
        await self.client.stop()
        self.log.removeHandler(self._captured)


_TERMINAL = frozenset(
    {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED"}
)


def _status_in(message: str) -> int | None:
    for word in message.replace(":", " ").split():
        if word.isdigit() and 300 <= int(word) < 600:
            return int(word)
    return None


def _small_share(offer: dict) -> list[dict]:
    """0.1 cpus and 32 MB of one role's resources in the offer, as a TaskInfo names them."""
    want = {"cpus": 0.1, "mem": 32.0}
    out = []
    for resource in offer.get("resources", []):
        name = resource.get("name")
        if name in want and resource.get("scalar", {}).get("value", 0) >= want[name]:
            taken = dict(resource, scalar={"value": want.pop(name)})
            out.append(taken)
    if want:
        raise AssertionError(f"offer {offer.get('id')} lacks {want}: {offer.get('resources')}")
    return out
