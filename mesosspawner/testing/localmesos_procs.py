"""localmesos as processes: a master (``python -m mesosspawner.localmesos``) and separate agent
processes (``... agent --master URL``), each in its own session and logged to a file.

Used by the end-to-end tests (tests/services/cluster.py) and by benchmarks/bench_spawn.py.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from mesosspawner.testing.hub import REPO_ROOT, _kill_group, _terminate, master_state, tail

LOCALMESOS_READY = re.compile(r"localmesos master listening on (http://127\.0\.0\.1:(\d+))")


class _LocalMesosProcess:
    """A `python -m mesosspawner.localmesos ...` subprocess in its own session, logged to a file."""

    def __init__(self, workdir: Path, log_name: str, env: dict[str, str] | None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = dict(os.environ if env is None else env)
        pythonpath = self.env.get("PYTHONPATH", "")
        self.env["PYTHONPATH"] = ":".join(p for p in (str(REPO_ROOT), pythonpath) if p)
        self.log_path = self.workdir / log_name
        self.proc: subprocess.Popen | None = None
        self._pgids: list[int] = []

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def fail(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\n--- tail of {self.log_path} ---\n{tail(self.log_path)}")

    def _spawn(self, args: list[str]) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mesosspawner.localmesos", *args],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pgids.append(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL the process only (a crash; an agent's task processes are left as they are)."""
        if self.running:
            self.proc.kill()
            self.proc.wait(10)

    async def stop(self, timeout: float = 20) -> None:
        """SIGTERM and wait; SIGKILL the group if it does not exit in time."""
        if self.running:
            await _terminate(self.proc, timeout, lambda: _kill_group(self.proc.pid))

    def cleanup(self) -> None:
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
        for pgid in self._pgids:
            _kill_group(pgid)


class LocalMesos(_LocalMesosProcess):
    """`python -m mesosspawner.localmesos` (a master) as a subprocess on a free (or fixed) port."""

    def __init__(
        self,
        workdir: Path,
        config_toml: str | None = None,
        *,
        port: int = 0,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(workdir, "localmesos.log", env)
        self.config_toml = config_toml
        self.port = port
        self.extra_args = extra_args or []
        self.config_path = self.workdir / "cluster.toml"
        self.url: str | None = None

    def start(self) -> None:
        args = ["--port", str(self.port)]
        if self.config_toml is not None:
            self.config_path.write_text(self.config_toml)
            args += ["--config", str(self.config_path)]
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._spawn(args + self.extra_args)

    async def wait_ready(self, timeout: float = 30) -> str:
        """Wait for the 'listening on' line; returns the master URL."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log_path.exists():
                with open(self.log_path, "rb") as f:
                    f.seek(self._log_offset)
                    match = LOCALMESOS_READY.search(f.read().decode(errors="replace"))
                if match:
                    self.url = match.group(1)
                    self.port = int(match.group(2))  # a restart reuses the same port
                    return self.url
            if self.proc.poll() is not None:
                raise self.fail(f"localmesos exited with {self.proc.returncode} before ready")
            await asyncio.sleep(0.05)
        raise self.fail(f"localmesos printed no 'listening on' line within {timeout}s")

    async def restart(self, timeout: float = 30) -> str:
        await self.stop()
        self.start()
        return await self.wait_ready(timeout)

    async def state(self) -> dict:
        assert self.url, "localmesos not started"
        return await master_state(self.url)


class LocalMesosAgent(_LocalMesosProcess):
    """A separate localmesos agent process (`... agent --master URL`), e.g. to kill it."""

    def __init__(
        self,
        workdir: Path,
        master: str,
        hostname: str,
        resources: str,
        attributes: str = "",
        *,
        extra_args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(workdir, f"agent-{hostname}.log", env)
        self.master = master
        self.hostname = hostname
        self.args = ["agent", "--master", master, "--hostname", hostname]
        self.args += ["--resources", resources, "--attributes", attributes, *(extra_args or [])]

    def start(self) -> None:
        self._spawn(self.args)

    async def wait_registered(self, master_url: str | None = None, timeout: float = 30) -> dict:
        """Wait until the master's /master/state lists an active agent with our hostname."""
        url = master_url or self.master
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise self.fail(f"agent {self.hostname} exited with {self.proc.returncode}")
            try:
                state = await master_state(url, timeout=5)
            except (ConnectionError, AssertionError):
                state = {}
            for agent in state.get("slaves", []):
                if agent.get("hostname") == self.hostname and agent.get("active", True):
                    return agent
            await asyncio.sleep(0.1)
        raise self.fail(f"agent {self.hostname} not registered with {url} after {timeout}s")
