"""Run a real JupyterHub (with configurable-http-proxy) as a subprocess, and call it.

Used by the end-to-end tests and the benchmarks (``run_cell`` runs notebook code as a cell
does, through the kernel API). Every wait has a timeout, and a failed wait raises
AssertionError carrying the tail of the relevant log, so a red test says why without a rerun.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from mesosspawner.testing.net import free_port

# The directory holding this mesosspawner package: a subprocess given it on PYTHONPATH imports
# this very code (a work tree), whatever the installed distribution points at.
REPO_ROOT = Path(__file__).resolve().parents[2]


def tail(path: Path, lines: int = 80) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def pids_with_env(key: str, value_pattern: str) -> list[int]:
    """Pids whose environment has `key` matching the regex `value_pattern` (root sees all)."""
    want = re.compile(rf"{re.escape(key)}={value_pattern}".encode())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if any(want.fullmatch(var) for var in environ.split(b"\0")):
            found.append(int(entry.name))
    return found


def kill_notebooks_of_hub(hub_port: int) -> list[int]:
    """SIGKILL every process whose JUPYTERHUB_API_URL points at the hub on `hub_port`.

    Notebooks outlive the hub (cleanup_servers=False) and LocalProcessSpawner puts each in its
    own session, so they are found by environment rather than by process group.
    """
    pids = pids_with_env("JUPYTERHUB_API_URL", rf"https?://[^/]*:{hub_port}/.*")
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return pids


def run_blocking(coro: Any) -> Any:
    """Run ``coro`` to completion from plain code, even where an event loop is running (a
    fixture or a test): on a loop of its own, in a thread."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _terminate(proc: subprocess.Popen, timeout: float, force: Callable[[], None]) -> bool:
    """SIGTERM ``proc`` and wait without blocking the loop; ``force`` it after ``timeout``.
    Returns whether it had to be forced."""
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    if proc.poll() is None:
        force()
        proc.wait(5)
        return True
    return False


class _Http:
    """One AsyncHTTPClient per event loop: pytest-asyncio gives each test its own loop, and a
    hub shared by a module's tests outlives them all."""

    def __init__(self, max_clients: int = 256) -> None:
        self._max_clients = max_clients
        # Keyed by id(loop); the loop is kept with its client so that id is never reused.
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, AsyncHTTPClient]] = {}

    def client(self) -> AsyncHTTPClient:
        loop = asyncio.get_running_loop()
        for key, (old, _) in list(self._clients.items()):
            if old.is_closed():  # a finished test's loop: its client cannot be used again
                del self._clients[key]
        if id(loop) not in self._clients:
            client = AsyncHTTPClient(force_instance=True, max_clients=self._max_clients)
            self._clients[id(loop)] = (loop, client)
        return self._clients[id(loop)][1]

    async def fetch(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
        follow_redirects: bool = False,
    ) -> tuple[int, bytes, dict[str, str]]:
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        request = HTTPRequest(
            url,
            method=method,
            body=body,
            headers=headers or {},
            request_timeout=timeout,
            connect_timeout=timeout,
            follow_redirects=follow_redirects,
            allow_nonstandard_methods=True,
        )
        response = await self.client().fetch(request, raise_error=False)
        if response.code == 599:
            # Connection refused / timeout: not an HTTP answer.
            raise ConnectionError(f"{method} {url}: {response.error}")
        return response.code, response.body or b"", dict(response.headers)

    def close(self) -> None:
        for _, client in self._clients.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing on a finished loop is harmless
                pass
        self._clients.clear()


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


async def master_state(url: str, timeout: float = 10) -> dict:
    """GET {url}/master/state from a (local)mesos master, as JSON."""
    http = _Http(max_clients=4)
    try:
        code, body, _ = await http.fetch(url.rstrip("/") + "/master/state", timeout=timeout)
    finally:
        http.close()
    assert code == 200, f"GET {url}/master/state answered {code}: {body[:500]!r}"
    return json.loads(body)


BASE_CONFIG = """\
# Written by mesosspawner/testing/hub.py; the caller's extra config follows at the end.
c = get_config()  # noqa
c.JupyterHub.bind_url = "http://127.0.0.1:{proxy_port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.auth_token = {proxy_token!r}
c.ConfigurableHTTPProxy.pid_file = {proxy_pid_file!r}
c.JupyterHub.pid_file = {hub_pid_file!r}
c.JupyterHub.db_url = "sqlite:///{db_path}"
c.JupyterHub.cookie_secret_file = {cookie_secret_file!r}
c.JupyterHub.log_level = {log_level!r}
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.services = [{{"name": "e2e-admin", "api_token": {admin_token!r}, "admin": True}}]
# Notebooks survive a hub restart; the fixtures kill them at teardown.
c.JupyterHub.cleanup_servers = False
c.JupyterHub.allow_named_servers = True
c.Spawner.cmd = {notebook_cmd!r}
# Keep the hub's PYTHONPATH / VIRTUAL_ENV out of the notebook's Python.
c.Spawner.env_keep = ["LANG", "LC_ALL"]
c.Spawner.environment = {{"PATH": {notebook_path!r}}}
c.Spawner.start_timeout = {start_timeout}
c.Spawner.http_timeout = {start_timeout}
"""


class Hub:
    """A JupyterHub subprocess in `workdir`, reachable at `self.url` through its proxy.

    Ports, tokens, database and config stay fixed for the object's life, so `restart()` brings
    back the same hub (notebooks keep calling the same hub API URL).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        extra_config: str = "",
        notebook_cmd: list[str] | None = None,
        notebook_bin: Path | None = None,
        env: dict[str, str] | None = None,
        log_level: str = "DEBUG",
        start_timeout: int = 60,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.extra_config = extra_config
        if notebook_cmd is None:
            exe = "jupyterhub-singleuser"
            notebook_cmd = [str(Path(notebook_bin) / exe) if notebook_bin else exe]
        self.notebook_cmd = notebook_cmd
        path_dirs = [str(notebook_bin)] if notebook_bin else []
        self.notebook_path = ":".join([*path_dirs, "/usr/local/bin", "/usr/bin", "/bin"])
        self.log_level = log_level
        self.start_timeout = start_timeout
        self.proxy_port = free_port()
        self.api_port = free_port()
        self.hub_port = free_port()
        self.url = f"http://127.0.0.1:{self.proxy_port}"
        self.hub_url = f"http://127.0.0.1:{self.hub_port}"
        self.admin_token = secrets.token_hex(16)
        self.proxy_token = secrets.token_hex(16)
        self.config_path = self.workdir / "jupyterhub_config.py"
        self.log_path = self.workdir / "hub.log"
        self.db_path = self.workdir / "jupyterhub.sqlite"
        self.proxy_pid_file = self.workdir / "proxy.pid"
        self.env = dict(os.environ if env is None else env)
        # The hub imports mesosspawner from the work tree even when it is not pip-installed.
        pythonpath = self.env.get("PYTHONPATH", "")
        if str(REPO_ROOT) not in pythonpath.split(":"):
            self.env["PYTHONPATH"] = ":".join(p for p in (str(REPO_ROOT), pythonpath) if p)
        self.proc: subprocess.Popen | None = None
        self._pgids: list[int] = []
        self._user_tokens: dict[str, str] = {}
        self._http = _Http()

    # ---- process lifecycle -------------------------------------------------------------

    def write_config(self) -> None:
        text = BASE_CONFIG.format(
            proxy_port=self.proxy_port,
            hub_port=self.hub_port,
            api_port=self.api_port,
            proxy_token=self.proxy_token,
            proxy_pid_file=str(self.proxy_pid_file),
            hub_pid_file=str(self.workdir / "jupyterhub.pid"),
            db_path=self.db_path,
            cookie_secret_file=str(self.workdir / "jupyterhub_cookie_secret"),
            log_level=self.log_level,
            admin_token=self.admin_token,
            notebook_cmd=self.notebook_cmd,
            notebook_path=self.notebook_path,
            start_timeout=self.start_timeout,
        )
        self.config_path.write_text(
            text + "\n# ---- extra config ----\n" + self.extra_config + "\n"
        )

    def start(self) -> None:
        """Launch the hub process (returns at once; see wait_ready)."""
        assert not self.running, f"hub {self.url} is already running (pid {self.proc.pid})"
        self.write_config()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== harness: starting hub at {time.ctime()} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(self.config_path)],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._pgids.append(self.proc.pid)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def fail(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\n--- tail of {self.log_path} ---\n{tail(self.log_path)}")

    async def wait_ready(self, timeout: float = 60) -> None:
        """Wait until GET /hub/api/ answers 200 through the proxy."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise self.fail(f"hub exited with {self.proc.returncode} before it was ready")
            try:
                code, body, _ = await self._http.fetch(self.url + "/hub/api/", timeout=5)
                if code == 200:
                    return
                last = f"{code} {body[:200]!r}"
            except (ConnectionError, HTTPClientError) as e:
                # Refused, reset or closed mid-answer (code 599): the proxy or the hub is still
                # coming up, e.g. a restarted hub re-adding its routes.
                last = str(e)
            await asyncio.sleep(0.2)
        raise self.fail(f"hub at {self.url} not ready after {timeout}s (last: {last})")

    async def launch(self, timeout: float = 60) -> Hub:
        """start() and wait_ready(); returns self."""
        self.start()
        await self.wait_ready(timeout)
        return self

    def launch_blocking(self, timeout: float = 60) -> Hub:
        """``launch()`` from plain code (a module-scoped fixture); returns self."""
        return run_blocking(self.launch(timeout))

    async def stop(self, timeout: float = 30) -> None:
        """SIGTERM the hub and wait; SIGKILL if it does not exit within `timeout`."""
        if self.running and await _terminate(self.proc, timeout, self.proc.kill):
            raise self.fail(f"hub did not exit within {timeout}s of SIGTERM; killed it")

    def kill(self) -> None:
        """SIGKILL the hub process only: its proxy and notebooks stay, as after a crash.

        A later start() finds the proxy by its pid file and replaces it (JupyterHub does that).
        """
        if self.running:
            self.proc.kill()
            self.proc.wait(10)

    async def restart(self, extra_config: str | None = None, timeout: float = 60) -> None:
        """Stop (if running) and start again with the same ports, db, tokens and config."""
        await self.stop()
        if extra_config is not None:
            self.extra_config = extra_config
        self.start()
        await self.wait_ready(timeout)

    def proxy_pid(self) -> int | None:
        try:
            pid = int(self.proxy_pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def cleanup(self, kill_notebooks: bool = True) -> None:
        """Blocking teardown: hub, its proxy and (by default) every notebook it started."""
        if self.running:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        proxy = self.proxy_pid()
        if proxy:
            try:
                os.kill(proxy, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pgid in self._pgids:
            _kill_group(pgid)
        if kill_notebooks:
            kill_notebooks_of_hub(self.hub_port)
        self._http.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # ---- REST API ----------------------------------------------------------------------

    async def api(
        self,
        method: str,
        path: str,
        json: Any = None,
        token: str | None = None,
        timeout: float = 60,
    ) -> tuple[int, Any]:
        """Call the hub REST API at /hub/api{path}; returns (status, decoded JSON or text)."""
        import json as jsonlib

        body = None if json is None else jsonlib.dumps(json).encode()
        headers = {"Authorization": f"token {token or self.admin_token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        code, raw, _ = await self._http.fetch(
            self.url + "/hub/api" + path, method=method, body=body, headers=headers, timeout=timeout
        )
        return code, _decode(raw)

    @staticmethod
    def _server_path(user: str, name: str = "") -> str:
        base = f"/users/{quote(user, safe='')}"
        return f"{base}/servers/{quote(name, safe='')}" if name else f"{base}/server"

    async def create_user(self, name: str) -> None:
        code, body = await self.api("POST", f"/users/{quote(name, safe='')}")
        if code not in (201, 409):
            raise self.fail(f"creating user {name!r} answered {code}: {body}")

    async def user_model(self, user: str) -> dict:
        code, body = await self.api("GET", f"/users/{quote(user, safe='')}")
        if code != 200:
            raise self.fail(f"GET /users/{user} answered {code}: {body}")
        return body

    async def start_server(
        self, user: str, name: str = "", options: dict | None = None, timeout: float = 120
    ) -> int:
        """POST the spawn request; returns the status (201 ready, 202 pending, 400 bad options)."""
        code, _ = await self.start_server_response(user, name, options, timeout)
        return code

    async def start_server_response(
        self, user: str, name: str = "", options: dict | None = None, timeout: float = 120
    ) -> tuple[int, Any]:
        """Like start_server, but also returns the body (the error message on 400)."""
        return await self.api(
            "POST", self._server_path(user, name), json=options or {}, timeout=timeout
        )

    async def wait_server_ready(
        self, user: str, name: str = "", timeout: float | None = None
    ) -> dict:
        """Poll GET /users/NAME until servers[name].ready; returns that server model.

        Fails fast (with the hub log) when the server vanishes, i.e. its spawn failed. By
        default it waits as long as the hub itself does (its start timeout, and a margin for
        the hub to say so): a slower machine then shows the hub's own verdict, not the test's.
        """
        if timeout is None:
            timeout = self.start_timeout + 15
        deadline = time.monotonic() + timeout
        server: dict | None = None
        while time.monotonic() < deadline:
            servers = (await self.user_model(user)).get("servers") or {}
            server = servers.get(name)
            if server is None:
                raise self.fail(f"server {user}/{name!r} is not pending or running (spawn failed?)")
            if server.get("ready"):
                return server
            await asyncio.sleep(0.2)
        raise self.fail(f"server {user}/{name!r} not ready after {timeout}s: {server}")

    async def stop_server(self, user: str, name: str = "", timeout: float = 60) -> int:
        """DELETE the server and wait until the hub no longer lists it; returns the status."""
        code, body = await self.api("DELETE", self._server_path(user, name), timeout=timeout)
        if code not in (202, 204):
            raise self.fail(f"stopping {user}/{name!r} answered {code}: {body}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            servers = (await self.user_model(user)).get("servers") or {}
            server = servers.get(name)
            if server is None or not (server.get("pending") or server.get("ready")):
                return code
            await asyncio.sleep(0.2)
        raise self.fail(f"server {user}/{name!r} still listed {timeout}s after DELETE")

    async def user_token(self, user: str) -> str:
        """An API token owned by `user` (created once with the admin token, then cached)."""
        if user not in self._user_tokens:
            code, body = await self.api(
                "POST", f"/users/{quote(user, safe='')}/tokens", json={"note": "e2e harness"}
            )
            if code != 201:
                raise self.fail(f"creating a token for {user!r} answered {code}: {body}")
            self._user_tokens[user] = body["token"]
        return self._user_tokens[user]

    def server_url(self, user: str, name: str = "") -> str:
        """The server's public URL through the proxy (ends with '/')."""
        url = f"{self.url}/user/{quote(user, safe='')}/"
        return url + f"{quote(name, safe='')}/" if name else url

    async def get_through_proxy(
        self,
        user: str,
        name: str = "",
        path: str = "api/status",
        token: str | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any]:
        """GET a path of the user's server through the proxy with a token the user owns."""
        return await self.request_through_proxy(
            user, name, "GET", path, token=token, timeout=timeout
        )

    async def request_through_proxy(
        self,
        user: str,
        name: str = "",
        method: str = "GET",
        path: str = "api/status",
        json: Any = None,
        token: str | None = None,
        timeout: float = 30,
    ) -> tuple[int, Any]:
        """Any request to the user's server through the proxy, e.g. PUT api/contents/f.txt.

        Token-authenticated, so jupyter_server needs no XSRF cookie for writes.
        """
        import json as jsonlib

        token = token or await self.user_token(user)
        headers = {"Authorization": f"token {token}"}
        body = None
        if json is not None:
            body = jsonlib.dumps(json).encode()
            headers["Content-Type"] = "application/json"
        code, raw, _ = await self._http.fetch(
            self.server_url(user, name) + path,
            method=method,
            body=body,
            headers=headers,
            timeout=timeout,
        )
        return code, _decode(raw)

    async def progress(self, user: str, name: str = "", timeout: float = 120) -> list[dict]:
        """All events of the server's progress stream (EventSource), until the hub closes it."""
        events: list[dict] = []
        buffer = b""

        def on_chunk(chunk: bytes) -> None:
            nonlocal buffer
            buffer += chunk
            while b"\n\n" in buffer:
                block, buffer = buffer.split(b"\n\n", 1)
                for line in block.splitlines():
                    if line.startswith(b"data:"):
                        events.append(json.loads(line[5:].strip()))

        path = self._server_path(user, name) + "/progress"
        request = HTTPRequest(
            self.url + "/hub/api" + path,
            headers={"Authorization": f"token {self.admin_token}"},
            request_timeout=timeout,
            streaming_callback=on_chunk,
        )
        try:
            await self._http.client().fetch(request)
        except HTTPClientError as e:
            raise self.fail(f"GET {path} failed: {e}") from e
        return events

    # ---- notebook code, as a cell runs it ------------------------------------------------

    async def start_kernel(self, user: str, name: str = "", kernel: str = "python3") -> str:
        """A new kernel in the user's server (Jupyter's REST API, through the proxy); its id."""
        code, model = await self.request_through_proxy(
            user, name, method="POST", path="api/kernels", json={"name": kernel}
        )
        if code != 201:
            raise AssertionError(
                f"starting a {kernel} kernel for {user!r} answered {code}: {model}"
            )
        return model["id"]

    async def run_cell(
        self,
        user: str,
        code: str,
        *,
        name: str = "",
        kernel_id: str | None = None,
        timeout: float = 300,
    ) -> str:
        """Run ``code`` the way a notebook cell runs: an ``execute_request`` over the kernel's
        WebSocket (Jupyter messaging 5.3), through the proxy, in ``kernel_id`` or a new kernel;
        its stdout. AssertionError with the traceback if the cell fails."""
        if kernel_id is None:
            kernel_id = await self.start_kernel(user, name)
        deadline = time.monotonic() + timeout
        # jupyter_server answers the WebSocket's handshake once the kernel is ready: on a loaded
        # machine that outlasts tornado's 20 s default, so the handshake may take the cell's time.
        token = await self.user_token(user)
        url = self.server_url(user, name).replace("http", "ws", 1)
        request = HTTPRequest(
            f"{url}api/kernels/{kernel_id}/channels",
            headers={"Authorization": f"token {token}"},
            connect_timeout=timeout,
            request_timeout=timeout,
        )
        ws = await websocket_connect(request, max_message_size=1 << 26)
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "username": user, "session": uuid.uuid4().hex}
        header.update(msg_type="execute_request", version="5.3")
        content = {"code": code, "silent": False, "store_history": False}
        content.update(user_expressions={}, allow_stdin=False, stop_on_error=True)
        message = {"header": header, "parent_header": {}, "metadata": {}, "channel": "shell"}
        ws.write_message(json.dumps(dict(message, content=content, buffers=[])))
        out: list[str] = []
        error = None
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"cell still running after {timeout} s; stdout: {out}")
                raw = await asyncio.wait_for(ws.read_message(), left)
                if raw is None:
                    raise AssertionError(f"the kernel's channel closed; stdout so far: {out}")
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, body = msg["msg_type"], msg["content"]
                if kind == "stream" and body["name"] == "stdout":
                    out.append(body["text"])
                elif kind == "error":
                    error = "\n".join(body["traceback"])
                elif kind == "execute_reply":
                    break
        finally:
            ws.close()
        if error is not None:
            raise AssertionError(f"the cell failed:\n{error}")
        return "".join(out)
