"""`mesosspawner-demo`: localmesos plus JupyterHub on 127.0.0.1:8000, for a newcomer's first look.

Run as root, notebooks run as the unprivileged user `mesosdemo` from a world-readable
environment made with Debian's python3 (root's own Python is usually not executable by others).
Run as an ordinary user, notebooks run as that user with no switching.
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

REPO_CONFIG = Path(__file__).resolve().parent.parent / "jupyterhub_config.py"
DEMO_USER = "mesosdemo"
DEMO_ENV = Path("/opt/mesosspawner/demo-env")


def _run(cmd: list[str], **kw) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def ensure_demo_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(DEMO_USER)
    except KeyError:
        _run(["useradd", "--create-home", "--shell", "/bin/bash", DEMO_USER])
        return pwd.getpwnam(DEMO_USER)


def ensure_notebook_env() -> Path:
    """A venv other users can execute, with the hub's jupyterhub version for singleuser."""
    exe = DEMO_ENV / "bin" / "jupyterhub-singleuser"
    want = version("jupyterhub")
    marker = DEMO_ENV / ".jupyterhub-version"
    lab = DEMO_ENV / "bin" / "jupyter-lab"
    if exe.exists() and lab.exists() and marker.exists() and marker.read_text().strip() == want:
        return exe
    base = shutil.which("python3", path="/usr/bin") or "/usr/bin/python3"
    _run([base, "-m", "venv", "--clear", str(DEMO_ENV)])
    _run([str(DEMO_ENV / "bin" / "pip"), "install", "-q", f"jupyterhub=={want}", "jupyterlab"])
    marker.write_text(want)
    _run(["chmod", "-R", "a+rX", str(DEMO_ENV.parent)])
    return exe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mesosspawner-demo", description=__doc__)
    parser.add_argument("--port", type=int, default=8000, help="public port of the hub")
    parser.add_argument("--mesos-port", type=int, default=5050, help="localmesos master port")
    parser.add_argument("--config", help="localmesos cluster file (default: built-in cluster)")
    parser.add_argument("--workdir", default=None, help="where the hub keeps its database")
    args = parser.parse_args(argv)

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="mesosspawner-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MESOSSPAWNER_DEMO="1")
    env["MESOSSPAWNER_DEMO_DB"] = f"sqlite:///{workdir / 'jupyterhub.sqlite'}"
    env["JUPYTERHUB_BIND_URL"] = f"http://127.0.0.1:{args.port}"
    homes = workdir / "homes"
    homes.mkdir(exist_ok=True)
    env["MESOSSPAWNER_DEMO_HOME"] = str(homes)
    if os.getuid() == 0:
        pw = ensure_demo_user()
        env["MESOSSPAWNER_NOTEBOOK_CMD"] = str(ensure_notebook_env())
        env["MESOSSPAWNER_DEMO_USER"] = DEMO_USER
        env["MESOSSPAWNER_DEMO_UID"] = str(pw.pw_uid)
        env["MESOSSPAWNER_DEMO_GID"] = str(pw.pw_gid)
        os.chmod(workdir, 0o755)
        os.chown(homes, pw.pw_uid, pw.pw_gid)
    else:
        me = pwd.getpwuid(os.getuid())
        env["MESOSSPAWNER_NOTEBOOK_CMD"] = str(
            Path(sys.executable).parent / "jupyterhub-singleuser"
        )
        env["MESOSSPAWNER_DEMO_USER"] = me.pw_name
        env["MESOSSPAWNER_DEMO_UID"] = str(me.pw_uid)
        env["MESOSSPAWNER_DEMO_GID"] = str(me.pw_gid)

    mesos_cmd = [sys.executable, "-m", "mesosspawner.localmesos", "--port", str(args.mesos_port)]
    if args.config:
        mesos_cmd += ["--config", args.config]
    mesos = subprocess.Popen(mesos_cmd, stdout=subprocess.PIPE, text=True, cwd=workdir)
    line = mesos.stdout.readline() if mesos.stdout else ""
    if "listening on" not in line:
        print(f"localmesos did not start: {line.strip()}", file=sys.stderr)
        return 1
    print(line.strip(), flush=True)
    env["MESOS_MASTER"] = line.strip().rsplit(" ", 1)[-1]
    hub = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(REPO_CONFIG)], env=env, cwd=workdir
    )
    print(
        f"JupyterHub on http://127.0.0.1:{args.port} — log in with any name and password",
        flush=True,
    )

    def forward(signum, _frame):
        hub.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        return hub.wait()
    finally:
        mesos.terminate()
        try:
            mesos.wait(10)
        except subprocess.TimeoutExpired:
            mesos.kill()


if __name__ == "__main__":
    sys.exit(main())
