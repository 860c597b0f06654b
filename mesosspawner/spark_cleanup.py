"""Tear down the Spark frameworks notebooks start: when a notebook stops, and any whose notebook
is gone (an orphan: a notebook killed behind the hub's back, or a driver configured with a
failover timeout that keeps its framework registered after the driver died).

The I/O shell around ``spark``, which decides which framework is whose. It reads the master's
frameworks (``GET /master/frameworks``) and tears down through the master's operator API
(``POST /api/v1``, ``TEARDOWN``: the master removes the framework and its agents kill its
executors), with the hub's credentials (the ACL ``teardown_frameworks`` must allow the hub's
principal on a secure cluster). One per hub framework, shared by its spawners.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from . import spark
from .mesos.states import TERMINAL_STATES

log = logging.getLogger("mesosspawner.spark")


class CleanupError(Exception):
    """The master could not be read or did not tear a framework down; the message says why."""


@dataclass(frozen=True)
class MasterAccess:
    """How to reach the leading master's HTTP endpoints as the hub."""

    base_url: Callable[[], str | None]  # the leader's http(s)://host:port, None if unknown
    principal: str | None = None
    secret: str | None = None
    ca_file: str | None = None


class SparkCleanup:
    """Finds and tears down the Spark frameworks of one hub's notebooks."""

    _instances: dict[int, SparkCleanup] = {}

    def __init__(
        self,
        access: MasterAccess,
        prefix: str,
        known_state: Callable[[str], str | None] = lambda task_id: None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.access = access
        self.prefix = prefix  # the hub's task-id prefix: only its notebooks' frameworks count
        self.known_state = known_state  # the hub's own last word on a notebook task's state
        self.log = logger or log
        self._loop_task: asyncio.Task | None = None
        self._missing: dict[str, int] = {}  # framework id -> sweeps its notebook was unknown
        self.owner: Any = None  # the MesosFramework this cleanup serves (for_framework)
        self._background: set[asyncio.Task] = set()

    @classmethod
    def for_framework(cls, fw, logger: logging.Logger | None = None) -> SparkCleanup:
        """The one cleanup of a hub's ``MesosFramework`` (created on first use): the master it
        follows, the hub's credentials and task-id prefix, and its records of notebook tasks."""
        from .naming import task_id_prefix

        cleanup = cls._instances.get(id(fw))
        if cleanup is not None and cleanup.owner is fw:
            return cleanup
        config = fw.config

        def known_state(task_id: str) -> str | None:
            record = fw.task(task_id)
            return record.state if record is not None else None

        access = MasterAccess(fw._master_base, config.principal, config.secret, config.ca_file)
        cleanup = cls(access, task_id_prefix(config.hub_id), known_state, logger)
        cleanup.owner = fw
        cls._instances[id(fw)] = cleanup
        return cleanup

    # ------------------------------------------------------------------ master I/O

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.access.principal and self.access.secret is not None:
            pair = f"{self.access.principal}:{self.access.secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        return headers

    def _base(self) -> str:
        base = self.access.base_url()
        if not base:
            raise CleanupError("the leading Mesos master's address is not known yet")
        return base

    async def _fetch(self, path: str, timeout: float, body: dict | None = None):
        headers = self._headers()
        if body is not None:
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            self._base() + path,
            method="POST" if body is not None else "GET",
            body=json.dumps(body) if body is not None else None,
            headers=headers,
            connect_timeout=timeout,
            request_timeout=timeout,
            ca_certs=self.access.ca_file,
            follow_redirects=body is None,
        )
        return await AsyncHTTPClient().fetch(request, raise_error=False)

    async def frameworks(self, timeout: float = 10.0) -> list[dict]:
        """Every framework registered with the master, with its tasks."""
        for path in ("/master/frameworks", "/master/state"):
            response = await self._fetch(path, timeout)
            if response.code == 404:
                continue
            if response.code != 200:
                why = response.error or f"HTTP {response.code}"
                raise CleanupError(f"GET {path} from the Mesos master: {why}")
            return json.loads(response.body).get("frameworks", [])
        raise CleanupError("the Mesos master serves neither /master/frameworks nor /master/state")

    async def teardown(self, framework_id: str, why: str, timeout: float = 10.0) -> None:
        body = {"type": "TEARDOWN", "teardown": {"framework_id": {"value": framework_id}}}
        response = await self._fetch("/api/v1", timeout, body)
        if response.code not in (200, 202):
            detail = (response.body or b"").decode(errors="replace").strip()
            raise CleanupError(
                f"TEARDOWN of Spark framework {framework_id}: HTTP {response.code} {detail}"
                " (a secure master needs the teardown_frameworks ACL for the hub's principal)"
            )
        self.log.info("Tore down Spark framework %s: %s", framework_id, why)

    # ------------------------------------------------------------------ what the spawner asks

    async def stop_notebook(
        self, task_id: str, driver: str | None = None, timeout: float = 30.0
    ) -> list[str]:
        """Tear down every Spark framework the notebook ``task_id`` started (``driver``: its
        driver's libprocess address) and wait until the master lists none; their ids."""
        deadline = time.monotonic() + timeout
        done: list[str] = []
        while True:
            ids = spark.frameworks_of(await self.frameworks(), task_id, driver)
            if not ids:
                return done
            if time.monotonic() > deadline:
                raise CleanupError(
                    f"Spark frameworks {', '.join(ids)} of notebook {task_id} are still"
                    f" registered {timeout:g} s after their teardown"
                )
            for framework_id in ids:
                if framework_id not in done:
                    await self.teardown(framework_id, f"its notebook {task_id} stopped")
                    done.append(framework_id)
            await asyncio.sleep(0.5)

    def stop_notebook_soon(self, task_id: str, driver: str | None = None) -> None:
        """``stop_notebook`` in the background (a notebook found dead by a poll)."""
        task = asyncio.ensure_future(self.stop_notebook(task_id, driver))
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.warning("Spark frameworks not torn down: %s", task.exception())

    async def sweep(self) -> list[str]:
        """Tear down the Spark frameworks whose notebook no longer runs; their ids.

        A notebook the master reports as finished (or the hub knows as such) is gone at once.
        One the master does not list at all (its record pruned, or a new leading master that has
        not heard from every agent yet) must stay unlisted for two sweeps in a row first.
        """
        found = spark.orphans(await self.frameworks(), self.prefix)
        done = []
        self._missing = {k: v for k, v in self._missing.items() if k in {f for f, *_ in found}}
        for framework_id, task_id, finished in found:
            if not finished and self.known_state(task_id) not in TERMINAL_STATES:
                self._missing[framework_id] = self._missing.get(framework_id, 0) + 1
                if self._missing[framework_id] < 2:
                    continue
            try:
                await self.teardown(framework_id, f"orphan: its notebook {task_id} is gone")
            except CleanupError as e:
                self.log.warning("%s", e)
                continue
            self._missing.pop(framework_id, None)
            done.append(framework_id)
        return done

    def start(self, interval: float) -> None:
        """Sweep every ``interval`` seconds in the background (once per hub; 0: never)."""
        if interval <= 0 or (self._loop_task is not None and not self._loop_task.done()):
            return
        self._loop_task = asyncio.ensure_future(self._sweep_periodically(interval))

    async def _sweep_periodically(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except (CleanupError, OSError, ValueError) as e:
                self.log.warning("Spark framework sweep failed: %s", e)

    def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            self._loop_task = None
