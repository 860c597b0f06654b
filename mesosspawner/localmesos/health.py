"""Task health checks (TaskInfo.health_check) as Mesos's command executor runs them.

``HealthPolicy`` is the pure part of Mesos's ``health_checker.cpp``: failures inside the grace
period are ignored until the first success; the framework hears ``healthy`` on the first result,
on the first failure after success, and on recovery; ``consecutive_failures`` failures kill the
task. ``probe`` runs one HTTP / TCP / COMMAND check against 127.0.0.1 (all agents share this
machine; a COMMAND check of a Docker task runs on the host, a localmesos simplification).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from .runner import argv_of


def _seconds(check: dict, key: str, default: float) -> float:
    try:
        return max(float(check.get(key, default)), 0.0)
    except (TypeError, ValueError):
        return default


@dataclass
class HealthPolicy:
    delay: float = 15.0
    interval: float = 10.0
    timeout: float = 20.0
    consecutive_failures: int = 3
    grace_period: float = 10.0

    @classmethod
    def from_check(cls, check: dict) -> HealthPolicy:
        try:
            failures = int(check.get("consecutive_failures", 3))
        except (TypeError, ValueError):
            failures = 3
        return cls(
            delay=_seconds(check, "delay_seconds", 15.0),
            interval=_seconds(check, "interval_seconds", 10.0),
            timeout=_seconds(check, "timeout_seconds", 20.0),
            consecutive_failures=max(failures, 1),
            grace_period=_seconds(check, "grace_period_seconds", 10.0),
        )


class HealthState:
    """Decides, result by result, what the executor tells the framework (pure)."""

    def __init__(self, policy: HealthPolicy) -> None:
        self.policy = policy
        self.initializing = True
        self.failures = 0

    def result(self, ok: bool, elapsed: float) -> tuple[bool | None, bool]:
        """(healthy value to report or None, kill the task?) after one check at ``elapsed`` s."""
        if ok:
            report = self.initializing or self.failures > 0
            self.initializing = False
            self.failures = 0
            return (True if report else None), False
        if self.initializing and elapsed < self.policy.grace_period:
            return None, False
        self.failures += 1
        kill = self.failures >= self.policy.consecutive_failures
        report = self.failures == 1 or kill
        return (False if report else None), kill


async def probe(check: dict, env: dict[str, str], cwd: str, timeout: float) -> bool:
    """One health check; True when healthy."""
    kind = check.get("type")
    try:
        if kind == "HTTP":
            http = check.get("http") or {}
            scheme = http.get("scheme") or "http"
            path = http.get("path") or "/"
            url = f"{scheme}://127.0.0.1:{int(http['port'])}{path}"
            resp = await AsyncHTTPClient().fetch(
                HTTPRequest(url, request_timeout=timeout or None, validate_cert=False),
                raise_error=False,
            )
            return 200 <= resp.code < 400
        if kind == "TCP":
            port = int((check.get("tcp") or {})["port"])
            _, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port), timeout or None
            )
            writer.close()
            return True
        if kind == "COMMAND":
            command = (check.get("command") or {}) or {}
            full_env = {**os.environ, **env}
            for var in (command.get("environment") or {}).get("variables") or []:
                full_env[str(var.get("name"))] = str(var.get("value", ""))
            proc = await asyncio.create_subprocess_exec(
                *argv_of(command),
                cwd=cwd,
                env=full_env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                return await asyncio.wait_for(proc.wait(), timeout or None) == 0
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                return False
    except (OSError, KeyError, TypeError, ValueError, TimeoutError):
        return False
    return False
