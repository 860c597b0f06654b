"""Real Apache Mesos 1.11.0 masters and agents on loopback, for the real-Mesos test tier.

``scripts/install-mesos.sh`` installs Mesos into ``build/mesos-1.11.0`` (or names an existing
install through ``MESOS_HOME``). Each master and agent gets its own work directory and free
ports, so parallel test sessions never share state. Agents report a fake hostname
(``--hostname``, no lookup) and 127.0.0.1 as their address, the same convention localmesos uses,
so one machine can hold several "hosts".

Used by the test suite (tests/services/cluster.py) and the benchmarks.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from mesosspawner.testing.mesos_security import Security
from mesosspawner.testing.net import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
INSTALL_DIR = REPO_ROOT / "build" / "mesos-1.11.0"
BUNDLE_DIR = REPO_ROOT.parent / "shared" / "real-mesos"
STOP_GRACE_SECONDS = 10.0
POLL_SECONDS = 0.05  # a master and its agents are up in about half a second: look often

# Short timeouts so a test sees agent loss and failover in seconds rather than minutes; every
# other flag keeps Mesos's default.
MASTER_TEST_FLAGS = (
    "--agent_ping_timeout=1secs",
    "--max_agent_ping_timeouts=3",
    "--allocation_interval=200ms",
    "--agent_reregister_timeout=10mins",
    "--zk_session_timeout=5secs",
)


def mesos_home() -> Path | None:
    """The Mesos install the tier uses, or None when there is none."""
    candidates = [os.environ.get("MESOS_HOME"), str(INSTALL_DIR)]
    for home in filter(None, candidates):
        if (Path(home) / "sbin" / "mesos-master").exists():
            return Path(home)
    return None


def why_unavailable() -> str | None:
    """The reason the real-Mesos tier cannot run here, or None when it can."""
    if mesos_home() is not None:
        return None
    return (
        "real Mesos 1.11.0 is not installed: run scripts/install-mesos.sh with MESOS_BUNDLE "
        f"(for example {BUNDLE_DIR}), MESOS_SRC or MESOS_HOME"
    )


def _get_json(url: str, timeout: float = 2.0, auth: tuple[str, str] | None = None) -> dict:
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", basic_auth(*auth))
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.loads(resp.read())


def basic_auth(principal: str, secret: str) -> str:
    """The ``Authorization`` header value of HTTP basic authentication."""
    return "Basic " + base64.b64encode(f"{principal}:{secret}".encode()).decode()


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    # libprocess would try SSL with the stubbed OpenSSL; the stubs make it fail loudly.
    env.pop("LIBPROCESS_SSL_ENABLED", None)
    env["MESOS_LAUNCHER_DIR"] = str(home / "libexec" / "mesos")
    return env


@dataclass
class MesosProcess:
    """One mesos-master or mesos-agent process and its log."""

    name: str
    argv: list[str]
    work_dir: Path
    home: Path
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    def start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.work_dir / f"{self.name}.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(self.home),
            start_new_session=True,
        )
        log.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def send(self, sig: int) -> None:
        if self.running:
            os.killpg(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM (or ``sig``), then SIGKILL after a grace period; also reaps the group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def processes_under(work_dir: Path) -> list[int]:
    """Pids of processes whose working directory or environment lies under ``work_dir``.

    Executors and their tasks run in sessions of their own (they outlive an agent on purpose,
    for recovery), so stopping an agent's process group leaves them behind.
    """
    root = str(Path(work_dir).resolve())
    needle = root.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if cwd == root or cwd.startswith(root + "/") or needle in environ:
            found.append(int(entry.name))
    return found


def unmount_under(work_dir: Path) -> None:
    """Lazily unmount whatever is mounted at or under ``work_dir``: an agent with the linux
    launcher bind-mounts its work directory onto itself (and its containers' volumes), and
    those mounts outlive it."""
    root = str(Path(work_dir).resolve())
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ")
            if point == root or point.startswith(root + "/"):
                points.append(point)
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)


def cgroups_root(work_dir: Path) -> str:
    """The agent's own ``--cgroups_root``, the same on every start from ``work_dir``.

    The linux launcher keeps each container in ``freezer/<cgroups_root>/<container id>``, and an
    agent that starts takes every container there it has not checkpointed for an orphan and
    destroys it. With Mesos's default (``mesos``) a test agent starting would kill the
    containers of another test's agent on this machine; in production there is one agent per
    machine."""
    digest = hashlib.sha256(str(Path(work_dir).absolute()).encode()).hexdigest()[:12]
    return f"mesos_test_{digest}"


def remove_cgroups(work_dir: Path) -> None:
    """Remove the (emptied) cgroups the agent of ``work_dir`` left under its cgroups root."""
    for hierarchy in Path("/sys/fs/cgroup").glob("*"):
        root = hierarchy / cgroups_root(work_dir)
        if not root.is_dir():
            continue
        for group in sorted(root.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                group.rmdir()


def kill_processes_under(work_dir: Path) -> None:
    """SIGKILL every executor and task an agent with ``work_dir`` left running."""
    for pid in processes_under(work_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class RealMaster(MesosProcess):
    port: int = 0
    zk: str | None = None
    # (principal, secret) for the master's own endpoints when it authenticates HTTP readers.
    auth: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def state(self) -> dict:
        return _get_json(f"{self.url}/master/state", auth=self.auth)

    def is_leader(self) -> bool:
        try:
            state = self.state()
        except (OSError, ValueError):
            return False
        # A standby redirects /master/state to the leader: the answer must be this master's own.
        own = str(state.get("pid", "")).endswith(f":{self.port}")
        return own and state.get("pid") == state.get("leader")

    def agents(self) -> list[dict]:
        return _get_json(f"{self.url}/master/slaves", auth=self.auth)["slaves"]

    def wait_ready(self, timeout: float = 60.0, leader: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            try:
                self.state()
                if not leader or self.is_leader():
                    return
            except (OSError, ValueError):
                pass
            time.sleep(POLL_SECONDS)
        raise TimeoutError(f"{self.name} not ready after {timeout} s:\n{self.log_tail()}")


@dataclass
class RealAgent(MesosProcess):
    hostname: str = ""
    port: int = 0
    resources: str = ""
    attributes: str = ""

    def wait_registered(self, master: RealMaster, timeout: float = 60.0) -> dict:
        """Wait until ``master`` lists this agent as active; returns its /master/slaves entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            try:
                for agent in master.agents():
                    if agent.get("hostname") == self.hostname and agent.get("active"):
                        return agent
            except (OSError, ValueError):
                pass
            time.sleep(POLL_SECONDS)
        raise TimeoutError(f"{self.name} did not register after {timeout} s:\n{self.log_tail()}")


def master(
    work_dir: Path,
    *,
    zk: str | None = None,
    port: int | None = None,
    extra: tuple[str, ...] = (),
    name: str = "master",
    security: Security | None = None,
) -> RealMaster:
    """A master, not yet started: in-memory registry, or with ``zk`` the replicated log.

    With ``security``: its flags (authentication, ACLs) and ``--zk`` from a file holding the
    digest URL (so the ZooKeeper password is neither on ``ps`` nor in ``/master/flags``)."""
    home = mesos_home()
    if home is None:
        raise RuntimeError(why_unavailable())
    port = port or free_port()
    argv = [
        str(home / "sbin" / "mesos-master"),
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--work_dir={work_dir / 'work'}",
        "--hostname=127.0.0.1",
        "--no-hostname_lookup",
        f"--webui_dir={home / 'share' / 'mesos' / 'webui'}",
        *MASTER_TEST_FLAGS,
        *(security.master_flags() if security is not None else ()),
        *extra,
    ]
    if zk:
        zk_flag = security.master_zk_flag(zk) if security is not None else zk
        argv += [f"--zk={zk_flag}", "--quorum=1", "--registry=replicated_log"]
    else:
        argv += ["--registry=in_memory"]
    # A flag in ``extra`` replaces a default of the same name (Mesos refuses a flag given twice).
    overridden = {flag.split("=", 1)[0] for flag in extra}
    argv = [a for a in argv if a.split("=", 1)[0] not in overridden or a in extra]
    auth = security.operator.auth if security is not None else None
    return RealMaster(name, argv, work_dir, home, port=port, zk=zk, auth=auth)


def agent(
    work_dir: Path,
    master_address: str,
    *,
    hostname: str,
    resources: str,
    attributes: str = "",
    docker: bool = False,
    port: int | None = None,
    extra: tuple[str, ...] = (),
    security: Security | None = None,
) -> RealAgent:
    """An agent, not yet started. ``master_address`` is ``127.0.0.1:PORT`` or ``zk://...``
    (without a digest: the agent only reads ZooKeeper, and its command line is on ``ps`` for
    every notebook on the machine). ``security`` adds its credential, HTTP authentication and
    ACLs.

    ``extra`` flags replace the defaults of the same name (``--isolation=...``).
    With ``docker`` the Docker containerizer comes first (the engine must answer already: the
    agent refuses to start otherwise); orphan killing is off because several agents share one
    engine here and would take each other's containers for orphans, and the agent's ``docker``
    is :func:`own_containers_docker` for the same reason.
    """
    home = mesos_home()
    if home is None:
        raise RuntimeError(why_unavailable())
    port = port or free_port()
    argv = [
        str(home / "sbin" / "mesos-agent"),
        f"--master={master_address}",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--hostname={hostname}",
        "--no-hostname_lookup",
        f"--work_dir={work_dir / 'work'}",
        f"--runtime_dir={work_dir / 'run'}",
        f"--fetcher_cache_dir={work_dir / 'fetch'}",
        "--launcher=posix",
        "--isolation=posix/cpu,posix/mem",
        "--systemd_enable_support=false",
        f"--cgroups_root={cgroups_root(work_dir)}",
        f"--launcher_dir={home / 'libexec' / 'mesos'}",
        f"--resources={resources}",
        "--registration_backoff_factor=100ms",
    ]
    if attributes:
        argv.append(f"--attributes={attributes}")
    if docker:
        argv += [
            "--containerizers=docker,mesos",
            f"--docker={own_containers_docker(work_dir)}",
            "--docker_kill_orphans=false",
            "--docker_stop_timeout=5secs",
            # Exited task containers would otherwise stay for Mesos's default of 6 hours.
            "--docker_remove_delay=1secs",
        ]
    else:
        argv.append("--containerizers=mesos")
    if security is not None:
        argv += security.agent_flags()
    # A flag in ``extra`` replaces the default above (Mesos refuses a flag given twice).
    overridden = {flag.split("=", 1)[0] for flag in extra}
    argv = [a for a in argv if a.split("=", 1)[0] not in overridden] + list(extra)
    return RealAgent(
        f"agent-{hostname}",
        argv,
        work_dir,
        home,
        hostname=hostname,
        port=port,
        resources=resources,
        attributes=attributes,
    )


# ``docker`` for an agent that shares the engine with other agents (and other tests). At start a
# real agent runs ``docker ps -a`` and then ``docker inspect`` on every ``mesos-*`` container, and
# its recovery fails when one of them is removed in between: here that is another agent's
# container, removed by that agent at any moment. This wrapper lists only the containers of the
# agent's own runs (a Docker task's container is ``mesos-<container id>`` and its sandbox is
# ``.../runs/<container id>`` under the agent's work dir), as if the agent had the engine alone,
# which is the production layout; every other command goes to Docker unchanged.
_OWN_CONTAINERS_DOCKER = """#!/bin/sh
# The agent runs: docker -H <socket> ps -a
[ "$3" = ps ] || exec /usr/bin/docker "$@"
listing=$(/usr/bin/docker "$@") || exit
printf '%s\\n' "$listing" | head -n 1
printf '%s\\n' "$listing" | tail -n +2 | while IFS= read -r line; do
  id=${{line##* mesos-}}
  id=${{id%.executor}}
  for run in {work}/slaves/*/frameworks/*/executors/*/runs/"$id"; do
    if [ -d "$run" ]; then printf '%s\\n' "$line"; break; fi
  done
done
exit 0
"""


def own_containers_docker(work_dir: Path) -> Path:
    """Write the agent's ``docker`` wrapper (see ``_OWN_CONTAINERS_DOCKER``); returns its path."""
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / "docker"
    path.write_text(_OWN_CONTAINERS_DOCKER.format(work=shlex.quote(str(work_dir / "work"))))
    path.chmod(0o755)
    return path


@dataclass
class RealCluster:
    """A started master (or two, with ZooKeeper) and its agents; ``stop()`` ends them all."""

    masters: list[RealMaster]
    agents: list[RealAgent] = field(default_factory=list)
    security: Security | None = None

    @property
    def master(self) -> RealMaster:
        for m in self.masters:
            if m.running and m.is_leader():
                return m
        return self.masters[0]

    @property
    def url(self) -> str:
        """The leading master's URL, or with ZooKeeper the ``zk://`` URL (in secure mode with
        the masters' digest, the ``zk://user:pass@...`` form a scheduler may be given)."""
        zk = self.masters[0].zk
        if zk and self.security is not None:
            return self.security.zk_url(zk)
        return zk if zk else self.masters[0].url

    def agent(self, hostname: str) -> RealAgent:
        return next(a for a in self.agents if a.hostname == hostname)

    def stop(self) -> None:
        for proc in [*self.agents, *self.masters]:
            proc.stop()
        for a in self.agents:
            kill_processes_under(a.work_dir)
            unmount_under(a.work_dir)
            remove_cgroups(a.work_dir)


# The tier's standard agents: a plain agent and one whose resources are reserved for "spark",
# with disjoint port ranges (all agents share this machine's network).
STANDARD_AGENTS = (
    {
        "hostname": "agent-1",
        "resources": "cpus:4;mem:4096;disk:10000;ports:[31000-31009]",
        "attributes": "rack:r1",
    },
    {
        "hostname": "spark-1",
        "resources": "cpus(spark):4;mem(spark):4096;cpus:1;mem:512;disk:10000;ports:[33000-33009]",
        "attributes": "rack:r2;spark_cluster:prod",
    },
)


def start_cluster(
    work_dir: Path,
    agents: tuple[dict, ...] = STANDARD_AGENTS,
    *,
    zk: str | None = None,
    masters: int = 1,
    docker: bool = False,
    master_extra: tuple[str, ...] = (),
    agent_extra: tuple[str, ...] = (),
    secure: bool = False,
) -> RealCluster:
    """Start masters and agents and wait until every agent is registered with the leader.

    An agent spec may carry ``extra``: flags for that agent only, after ``agent_extra``.
    ``secure``: secure mode (``mesos_security``: credentials, ACLs and a ZooKeeper digest
    written under ``work_dir/security``); ``cluster.security`` holds its principals."""
    if masters > 1 and not zk:
        raise ValueError("more than one master needs ZooKeeper")
    security = Security.create(work_dir / "security") if secure else None
    cluster = RealCluster([], security=security)
    try:
        for i in range(masters):
            m = master(
                work_dir / f"master-{i}",
                zk=zk,
                extra=master_extra,
                name=f"master-{i}",
                security=security,
            )
            m.start()
            cluster.masters.append(m)
        deadline = time.monotonic() + 60
        while not any(m.is_leader() for m in cluster.masters):
            if time.monotonic() > deadline:
                raise TimeoutError("no leading master:\n" + cluster.masters[0].log_tail())
            for m in cluster.masters:
                if not m.running:
                    raise RuntimeError(f"{m.name} exited:\n{m.log_tail()}")
            time.sleep(POLL_SECONDS)
        address = zk or f"127.0.0.1:{cluster.masters[0].port}"
        for spec in agents:
            spec = dict(spec)
            own = tuple(spec.pop("extra", ()))  # this agent's own flags (e.g. --isolation=...)
            a = agent(
                work_dir / f"agent-{spec['hostname']}",
                address,
                docker=docker,
                extra=(*agent_extra, *own),
                security=security,
                **spec,
            )
            a.start()
            cluster.agents.append(a)
        for a in cluster.agents:
            a.wait_registered(cluster.master)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    raise TimeoutError(url)
