"""The demo (``bash scripts/demo.sh``, or ``python -m mesosspawner.demo``): localmesos and
JupyterHub on 127.0.0.1 for a newcomer's first look, in the foreground. Ctrl-C stops it all
once: the notebooks, the hub and its proxy, localmesos; then the demo's temporary directory
(database, sandboxes) is removed.

Run as root, each person who logs in gets a Unix account of their own on their first spawn
(``demo-<name>``, home ``/home/demo-<name>``: ``demo_users``), and notebooks run as it, from a
notebook environment every account can execute: ``/opt/mesosspawner/demo-env``, made once
(about 90 s) from Debian's ``/usr/bin/python3``. Run as an ordinary user, notebooks run as that
user from ``~/.cache/mesosspawner/demo-env``, with a home per person in the temporary directory.
``--remove`` deletes the accounts and the environment again.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from importlib.metadata import version
from pathlib import Path

from . import demo_users

REPO = Path(__file__).resolve().parent.parent
REPO_CONFIG = REPO / "jupyterhub_config.py"
ROOT_ENV = Path("/opt/mesosspawner/demo-env")
DEFAULT_ADMIN = "admin"
ENV_TIME = "a minute or two"  # 45 s measured here with a warm mirror; said before it starts


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


# ---------------------------------------------------------------------------- notebook env


def default_env() -> Path:
    if os.getuid() == 0:
        return ROOT_ENV
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "mesosspawner" / "demo-env"


def _run_timed(cmd: list[str], what: str) -> None:
    """Run ``cmd``, saying every 15 s that it is still going (pip is silent for minutes)."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd)
    while True:
        try:
            code = proc.wait(15)
            break
        except subprocess.TimeoutExpired:
            say(f"  still {what} ({time.monotonic() - started:.0f} s)")
    if code:
        raise SystemExit(f"demo: {what} failed (exit {code}): {' '.join(cmd)}")


def ensure_notebook_env(env: Path) -> Path:
    """A venv with the hub's jupyterhub version and JupyterLab, for the notebooks; made once.

    As root it is made from Debian's python3 and made world-readable: the demo accounts must
    execute it, and root's own Python (pyenv, a venv under /root) is usually private."""
    want = version("jupyterhub")
    exe = env / "bin" / "jupyterhub-singleuser"
    marker = env / ".jupyterhub-version"
    lab = env / "bin" / "jupyter-lab"
    if exe.exists() and lab.exists() and marker.exists() and marker.read_text().strip() == want:
        return exe
    root = os.getuid() == 0
    base = "/usr/bin/python3" if root and Path("/usr/bin/python3").exists() else sys.executable
    say(
        f"first start: making the notebook environment {env} (JupyterHub {want} and"
        f" JupyterLab, about 400 MB, {ENV_TIME}; only once)"
    )
    started = time.monotonic()
    env.parent.mkdir(parents=True, exist_ok=True)
    _run_timed([base, "-m", "venv", "--clear", str(env)], "making the venv")
    _run_timed(
        [str(env / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        + [f"jupyterhub=={want}", "jupyterlab"],
        "installing JupyterHub and JupyterLab",
    )
    if root:
        subprocess.run(["chmod", "-R", "a+rX", str(env.parent)], check=True)
    marker.write_text(want)
    say(f"notebook environment ready in {time.monotonic() - started:.0f} s")
    return exe


# ---------------------------------------------------------------------------- removal


def remove(env: Path) -> int:
    """Delete what the demo made outside its checkout: demo accounts (with homes), the env."""
    accounts = demo_users.demo_accounts()
    if accounts and os.getuid() != 0:
        say("only root can remove the demo's Unix accounts")
        return 1
    for pw in accounts:
        say(f"removing Unix account {pw.pw_name} and its home {pw.pw_dir}")
        subprocess.run(["userdel", "--remove", pw.pw_name], check=False, capture_output=True)
    had_env = env.exists()
    if had_env:
        say(f"removing the notebook environment {env}")
        shutil.rmtree(env)
        with contextlib.suppress(OSError):
            env.parent.rmdir()  # /opt/mesosspawner, when nothing else is in it
    if not accounts and not had_env:
        say("nothing to remove")
    return 0


# ---------------------------------------------------------------------------- processes


class Demo:
    """The demo's processes, each in its own session so that only the demo hears the
    terminal's Ctrl-C and each is stopped once, in order."""

    def __init__(self, args: argparse.Namespace, workdir: Path, own_workdir: bool) -> None:
        self.args = args
        self.workdir = workdir
        self.own_workdir = own_workdir
        self.mesos: subprocess.Popen | None = None
        self.hub: subprocess.Popen | None = None
        self.stop_requested = threading.Event()
        self.hurry = False

    def on_signal(self, signum: int, _frame) -> None:
        if self.stop_requested.is_set():
            self.hurry = True  # a second Ctrl-C: stop at once
        self.stop_requested.set()

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The hub and localmesos run this checkout's code, wherever the package is installed.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
        return env

    def start_mesos(self) -> str:
        cmd = [sys.executable, "-m", "mesosspawner.localmesos", "--port", str(self.args.mesos_port)]
        cmd += ["--work-dir", str(self.workdir / "mesos")]
        if self.args.config:
            cmd += ["--config", self.args.config]
        if os.getuid() == 0:
            # localmesos has no authentication: as root it runs tasks only as the demo's own
            # unprivileged accounts (and never as root), whoever on this machine asks.
            cmd += ["--task-users", demo_users.PREFIX + "*"]
        (self.workdir / "mesos").mkdir(exist_ok=True)
        os.chmod(self.workdir / "mesos", 0o755)  # notebooks of other accounts reach sandboxes
        self.mesos = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            text=True,
            env=self.env(),
            cwd=self.workdir,
            start_new_session=True,
        )
        line = self.mesos.stdout.readline() if self.mesos.stdout else ""
        if "listening on" not in line:
            raise SystemExit(f"demo: localmesos did not start ({line.strip() or 'no output'})")
        # Nothing else comes on stdout; keep the pipe drained all the same.
        threading.Thread(target=self.mesos.stdout.read, daemon=True).start()
        return line.strip().rsplit(" ", 1)[-1]

    def start_hub(self, env: dict[str, str]) -> None:
        hubdir = self.workdir / "hub"
        hubdir.mkdir(mode=0o700, exist_ok=True)
        self.hub = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(REPO_CONFIG)],
            env=env,
            cwd=hubdir,
            start_new_session=True,
        )

    def wait_ready(self, url: str, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            if self.hub is None or self.hub.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            self.stop_requested.wait(0.3)
        return False

    def wait(self) -> int:
        """Until Ctrl-C (or SIGTERM/SIGHUP), or until the hub or localmesos exits."""
        while not self.stop_requested.wait(0.5):
            for name, proc in (("JupyterHub", self.hub), ("localmesos", self.mesos)):
                if proc is not None and proc.poll() is not None:
                    say(f"{name} exited with status {proc.returncode}; stopping the rest")
                    return 1
        return 0

    def _stop(self, proc: subprocess.Popen | None, timeout: float) -> None:
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline and not self.hurry:
                time.sleep(0.1)
        # Whatever is left of its session (the hub's proxy) goes with it.
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            if sig == signal.SIGTERM:
                time.sleep(0.2)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)

    def stop(self) -> None:
        say("stopping the notebooks, JupyterHub and localmesos (Ctrl-C again: at once)")
        # The hub stops every notebook first (cleanup_servers in the demo config).
        self._stop(self.hub, 60)
        self._stop(self.mesos, 20)
        left = _kill_sandbox_processes(self.workdir / "mesos")
        if left:
            say(f"killed {left} process(es) left behind by notebooks")
        if self.own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            say(f"stopped; removed {self.workdir}")
        else:
            say("stopped")


def _kill_sandbox_processes(sandboxes: Path) -> int:
    """Kill what notebooks left behind (a kernel or terminal outliving a killed notebook):
    every process whose environment names a sandbox under ``sandboxes``. Linux /proc."""
    needle = f"MESOS_SANDBOX={sandboxes}/".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        if found and sig == signal.SIGTERM:
            time.sleep(1)
    return len(found)


# ---------------------------------------------------------------------------- main


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bash scripts/demo.sh",
        description="localmesos and JupyterHub on 127.0.0.1, in the foreground; Ctrl-C stops "
        "everything. Log in with any name and any password.",
    )
    p.add_argument("--port", type=int, default=8000, help="the hub's public port (default 8000)")
    p.add_argument("--mesos-port", type=int, default=5050, help="localmesos's port (default 5050)")
    p.add_argument(
        "--admin",
        default=DEFAULT_ADMIN,
        help=f"the hub user who is an admin (/hub/admin); default {DEFAULT_ADMIN!r}",
    )
    p.add_argument("--config", help="localmesos cluster file (default: the built-in cluster)")
    p.add_argument(
        "--workdir",
        help="keep the hub's database and the sandboxes here, and keep them after Ctrl-C "
        "(default: a temporary directory, removed at Ctrl-C)",
    )
    p.add_argument(
        "--notebook-env",
        type=Path,
        help=f"the notebooks' environment (default: {ROOT_ENV} as root, "
        "~/.cache/mesosspawner/demo-env otherwise)",
    )
    p.add_argument(
        "--remove",
        action="store_true",
        help="delete what the demo made outside this checkout (the demo- accounts with their "
        "homes, the notebook environment) and exit",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    env_dir = args.notebook_env or default_env()
    if args.remove:
        return remove(env_dir)
    for option, port in (("--port", args.port), ("--mesos-port", args.mesos_port)):
        if _in_use(port):
            say(f"port {port} is in use (another demo?): choose another with {option} PORT")
            return 1
    started = time.monotonic()
    root = os.getuid() == 0
    try:
        notebook_cmd = ensure_notebook_env(env_dir)
    except KeyboardInterrupt:
        say("interrupted while making the notebook environment; it is made again next time")
        return 130

    own = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mesosspawner-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)  # sandboxes below it belong to the people's accounts
    demo = Demo(args, workdir, own)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, demo.on_signal)
    try:
        mesos_url = demo.start_mesos()
        env = demo.env()
        env.update(
            MESOSSPAWNER_DEMO="1",
            MESOS_MASTER=mesos_url,
            MESOSSPAWNER_DEMO_DB=f"sqlite:///{workdir / 'hub' / 'jupyterhub.sqlite'}",
            JUPYTERHUB_BIND_URL=f"http://127.0.0.1:{args.port}",
            # Free ports for the hub API and the proxy API: two demos (or a demo and the
            # tests) must not fight over JupyterHub's fixed 8081 and 8001.
            JUPYTERHUB_HUB_BIND_URL=f"http://127.0.0.1:{_free_port()}",
            MESOSSPAWNER_DEMO_PROXY_API_URL=f"http://127.0.0.1:{_free_port()}",
            MESOSSPAWNER_DEMO_ADMIN=args.admin,
            MESOSSPAWNER_NOTEBOOK_CMD=str(notebook_cmd),
            MESOSSPAWNER_DEMO_HOME=str(workdir / "homes"),
        )
        if root:
            env["MESOSSPAWNER_DEMO_ACCOUNTS"] = "1"
            who = "its own Unix account, demo-<name> (made on first spawn; home /home/demo-<name>)"
        else:
            me = pwd.getpwuid(os.getuid())
            env.update(
                MESOSSPAWNER_DEMO_USER=me.pw_name,
                MESOSSPAWNER_DEMO_UID=str(me.pw_uid),
                MESOSSPAWNER_DEMO_GID=str(me.pw_gid),
            )
            who = f"you ({me.pw_name}), with a home per person in {workdir / 'homes'}"
        (workdir / "homes").mkdir(exist_ok=True)
        kept = "removed at Ctrl-C" if own else "kept after Ctrl-C"
        say(f"hub database and Mesos sandboxes in {workdir} ({kept})")
        say(f"localmesos on {mesos_url} (agents, frameworks and tasks at {mesos_url}/)")
        demo.start_hub(env)
        url = f"http://127.0.0.1:{args.port}"
        # The hub's own API first: asked through the proxy before the hub is up, the proxy
        # prints a stack trace per request ("Failed to get custom error page").
        hub_api = env["JUPYTERHUB_HUB_BIND_URL"]
        if demo.wait_ready(f"{hub_api}/hub/health") and demo.wait_ready(f"{url}/hub/health"):
            say(f"ready in {time.monotonic() - started:.0f} s: open {url} and log in with any")
            say(f"  name and any password ({args.admin!r} is the admin: {url}/hub/admin)")
            say(f"  each person's notebooks run as {who}")
            say("  Ctrl-C stops everything")
        code = demo.wait()
    finally:
        demo.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
