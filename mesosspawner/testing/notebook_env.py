"""A notebook environment and system users that tests can run notebooks as.

Root's default python3 lives under /root (mode 700), so a process switched to another uid
cannot execute it or a venv made from it. This builds the notebook environment from Debian's
``/usr/bin/python3`` in a world-readable directory instead, with the same jupyterhub version as
the hub, and reuses it across runs while that version still matches.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import jupyterhub

NBENV_DIR = Path(os.environ.get("MESOSSPAWNER_NBENV", "/opt/mesosspawner-test/nbenv"))
SYSTEM_PYTHON = "/usr/bin/python3"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# jsonschema 4.25 added rfc3987-syntax to the format-nongpl extra jupyter-events asks for; it
# builds an Earley parser when imported: 0.9 s of a notebook start's 1.8 s of import CPU, about
# 100 s of CPU over a test run's hundred notebook starts. Nothing in a notebook checks IRIs.
NOTEBOOK_PACKAGES = ("jupyter_server", "jupyterlab", "jsonschema<4.25")


class SystemUser(NamedTuple):
    name: str
    uid: int
    gid: int
    home: str


def is_root() -> bool:
    return os.geteuid() == 0


def hub_version() -> str:
    return jupyterhub.__version__


def _installed_version(env_dir: Path) -> str | None:
    """The jupyterhub version the env's singleuser reports, or None if it cannot run."""
    exe = env_dir / "bin" / "jupyterhub-singleuser"
    if not exe.exists():
        return None
    try:
        out = subprocess.run(
            [str(exe), "--version"], capture_output=True, text=True, timeout=300, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[-1].strip() if out.stdout.strip() else None


def _has_dist(env_dir: Path, dist: str, version: str | None = None) -> bool:
    """Whether the env's site-packages holds `dist` (at `version`), read from the filesystem.

    No subprocess: on a loaded machine `jupyterhub-singleuser --version` can take long enough to
    time out, and a false "missing" would rebuild the env under running notebooks.
    """
    pattern = f"{dist}-{version}.dist-info" if version else f"{dist}-*.dist-info"
    return any(env_dir.glob(f"lib/python3*/site-packages/{pattern}"))


def _marker(version: str) -> str:
    """What `.complete` holds: the hub's version and the package list the env was built from."""
    return f"{version}\n{' '.join(NOTEBOOK_PACKAGES)}\n"


def _env_ready(env_dir: Path, version: str) -> bool:
    """A complete build (marker written last) of this jupyterhub and this package list."""
    marker = env_dir / ".complete"
    if not marker.exists() or marker.read_text() != _marker(version):
        return False
    if not (env_dir / "bin" / "jupyterhub-singleuser").exists():
        return False
    if not (env_dir / "bin" / "jupyter-lab").exists():
        return False
    return _has_dist(env_dir, "jupyterhub", version) and _has_dist(env_dir, "jupyter_server")


def _pip_env() -> dict[str, str]:
    env = dict(os.environ)
    # Debian's pip does not read certifi's bundle; PyPI is signed by the host's CA bundle.
    if Path(HOST_CA_BUNDLE).exists():
        env.setdefault("PIP_CERT", HOST_CA_BUNDLE)
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _make_world_readable(path: Path) -> None:
    subprocess.run(["chmod", "-R", "a+rX", str(path)], check=True)
    # Every parent must be traversable by the notebook users too.
    for parent in path.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if mode & 0o005 != 0o005:
            parent.chmod(mode | 0o005)


def ensure_notebook_env(env_dir: Path = NBENV_DIR, version: str | None = None) -> Path:
    """Build (or reuse) the notebook venv at env_dir; return its bin directory.

    Safe to call from parallel pytest processes: the build holds a lock file next to env_dir.
    """
    version = version or hub_version()
    env_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = env_dir.parent / (env_dir.name + ".lock")
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _env_ready(env_dir, version):
            return env_dir / "bin"
        if env_dir.exists():
            shutil.rmtree(env_dir)
        subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(env_dir)], check=True, timeout=300)
        pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        result = subprocess.run(
            [*pip, f"jupyterhub=={version}", *NOTEBOOK_PACKAGES],
            env=_pip_env(),
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"pip install jupyterhub=={version} {' '.join(NOTEBOOK_PACKAGES)} into {env_dir} "
                "failed "
                f"(exit {result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        _make_world_readable(env_dir)
        got = _installed_version(env_dir)
        if got != version:
            raise RuntimeError(
                f"{env_dir}/bin/jupyterhub-singleuser --version says {got!r}, expected {version!r}"
            )
        # Written last: an interrupted build is never mistaken for a complete one.
        (env_dir / ".complete").write_text(_marker(version))
    return env_dir / "bin"


def ensure_user(name: str) -> tuple[int, int]:
    """Create system user `name` with a home directory if missing; return (uid, gid)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        if not is_root():
            raise PermissionError(f"creating system user {name!r} needs root") from None
        # One useradd at a time: parallel ones fail to lock /etc/passwd (exit 10).
        NBENV_DIR.parent.mkdir(parents=True, exist_ok=True)
        with open(NBENV_DIR.parent / "useradd.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            result = subprocess.run(
                ["useradd", "-m", "-s", "/bin/bash", "-U", name],
                capture_output=True,
                text=True,
                timeout=60,
            )
        # Exit 9: created meanwhile by a parallel test process.
        if result.returncode not in (0, 9):
            raise RuntimeError(f"useradd {name} failed: {result.stderr.strip()}") from None
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def system_user(name: str) -> SystemUser:
    uid, gid = ensure_user(name)
    return SystemUser(name, uid, gid, pwd.getpwnam(name).pw_dir)


def group_name(gid: int) -> str:
    return grp.getgrgid(gid).gr_name
