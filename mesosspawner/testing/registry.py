"""Debian's ``docker-registry`` on a free loopback port, for the tests and the benchmarks.

Its storage lives under the given work directory, or in ``storage`` when given: the Spark
images' 1.4 GB are then pushed once per machine and content hash (``spark.cached_registry``),
not once per session. ``authenticated`` makes every request need a login (htpasswd, bcrypt):
one each for the images service, CI and the agents, as a lab's registry has them.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .net import free_port


@dataclass
class Registry:
    address: str  # 127.0.0.1:PORT
    proc: subprocess.Popen | None  # None where another process started it
    root: Path  # its storage
    log_path: Path
    logins: dict = field(default_factory=dict)  # name -> registry.Credentials (auth only)

    def docker_config(self, who: str, directory: Path) -> Path:
        """``directory/config.json`` holding *who*'s login (what ``--docker_config``,
        ``DOCKER_CONFIG`` and ``mesosspawner-images serve --docker-config`` take), mode 0600."""
        from mesosspawner.images.registry import docker_config_json

        directory.mkdir(parents=True, exist_ok=True)
        path = directory / "config.json"
        path.write_text(docker_config_json({self.address: self.logins[who]}))
        path.chmod(0o600)
        return path


REGISTRY_LOGINS = ("images-service", "ci", "agents")


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash for an htpasswd file (docker-registry accepts only bcrypt)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # libxcrypt's bcrypt; the module leaves Python in 3.13

    hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**8))
    if not hashed or not hashed.startswith("$2"):
        raise RuntimeError("this libcrypt makes no bcrypt hashes, which docker-registry needs")
    return hashed


def terminate(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def start_registry(
    workdir: Path,
    timeout: float = 30.0,
    storage: Path | None = None,
    authenticated: bool = False,
) -> Registry:
    """Run ``docker-registry`` on 127.0.0.1:free port, its storage in ``storage`` or under
    ``workdir``; returns once it answers. ``authenticated``: every request needs one of
    ``REGISTRY_LOGINS``."""
    if shutil.which("docker-registry") is None:
        raise RuntimeError("docker-registry is not installed: apt-get install docker-registry")
    workdir.mkdir(parents=True, exist_ok=True)
    root = storage or workdir / "storage"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "config.yml"
    logins = {}
    auth = ""
    if authenticated:
        import secrets

        from mesosspawner.images.registry import Credentials

        logins = {name: Credentials(name, secrets.token_urlsafe(18)) for name in REGISTRY_LOGINS}
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text(
            "".join(f"{c.username}:{bcrypt_hash(c.password)}\n" for c in logins.values())
        )
        htpasswd.chmod(0o600)
        auth = f"auth:\n  htpasswd:\n    realm: mesosspawner-test\n    path: {htpasswd}\n"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {root}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n" + auth
    )
    log_path = workdir / "registry.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            ["docker-registry", "serve", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    registry = Registry(f"127.0.0.1:{port}", proc, root, log_path, logins)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{registry.address}/v2/", timeout=2) as resp:
                if resp.status == 200:
                    return registry
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and authenticated:
                return registry
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            terminate(proc, 5)
            raise RuntimeError(
                f"docker-registry did not answer on {registry.address}: "
                + log_path.read_text(errors="replace")[-2000:]
            )
        time.sleep(0.2)


def stop_registry(registry: Registry) -> None:
    if registry.proc is not None:
        terminate(registry.proc, 10)
