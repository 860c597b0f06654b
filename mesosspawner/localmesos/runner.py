"""How an agent runs one task: the ``TaskRunner`` interface and the local-process runner.

The agent builds a ``AgentTaskSpec`` from the TaskInfo and picks a runner: ``DockerRunner``
(``docker_runner.py``) when the task carries a Docker image, ``LocalProcessRunner`` otherwise
(the Mesos containerizer without an image). A runner never sends status updates itself; the
agent turns ``start``/``wait`` results into TASK_STARTING / RUNNING / FINISHED / FAILED / KILLED.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class RunnerError(Exception):
    """The task cannot be started; the message becomes the TASK_FAILED status message."""


@dataclass
class AgentTaskSpec:
    """Everything a runner needs, already resolved by the agent (plain data)."""

    task_id: str
    framework_id: str
    agent_id: str
    name: str
    sandbox: str  # absolute path of the task's sandbox directory (exists, owned by the user)
    command: dict  # TaskInfo.command JSON: value, shell (default true), arguments, user, env
    container: dict | None  # TaskInfo.container JSON (type DOCKER / MESOS, docker / mesos.image)
    # The task's whole environment, as Mesos's command executor builds it: MESOS_* vars, PATH
    # and command.environment. Nothing of the agent's own environment reaches a task.
    env: dict[str, str]
    ports: list[int] = field(default_factory=list)  # host ports the task was given
    gpus: list[int] = field(default_factory=list)  # whole GPU device indices the task was given
    cpus: float = 0.0  # the task's cpus and mem (MB) resources
    mem: float = 0.0
    kill_grace: float = 3.0  # kill_policy.grace_period, seconds (Mesos default 3 s)
    user: str | None = None  # command.user, or the framework's user when unset


ReportFn = Callable[[str, str], None]


class TaskRunner(Protocol):
    """One runner instance runs exactly one task."""

    async def start(self, spec: AgentTaskSpec, report: ReportFn) -> None:
        """Start the task and return once it runs.

        ``report(state, message)`` may be called with ``"TASK_STARTING"`` to tell the framework
        about slow steps (e.g. ``"pulling image x"``). Raise ``RunnerError(message)`` when the task
        cannot start; the agent then sends TASK_FAILED with that message.
        """

    async def wait(self) -> tuple[int | None, str]:
        """Wait for the task to end: (exit code or None if killed by a signal, message)."""

    async def kill(self, grace: float) -> None:
        """Ask the task to stop (SIGTERM or ``docker stop``), force it after ``grace`` seconds.

        Returns once the kill is initiated or done; ``wait`` reports the end.
        """


def docker_image(container: dict | None) -> str | None:
    """The Docker image a TaskInfo.container asks for, under either containerizer."""
    if not container:
        return None
    image = (container.get("docker") or {}).get("image")
    if image:
        return image
    mesos_image = (container.get("mesos") or {}).get("image") or {}
    return (mesos_image.get("docker") or {}).get("name") or None


def argv_of(command: dict) -> list[str]:
    """Mesos CommandInfo semantics: shell → ``/bin/sh -c value``; else value + arguments exec'd."""
    value = command.get("value") or ""
    if command.get("shell", True):
        return ["/bin/sh", "-c", value]
    arguments = list(command.get("arguments") or [])
    # Mesos execs `value` with `arguments` as the full argv (argv[0] included).
    return [value, *arguments[1:]] if arguments else [value]


def _with_mounts(spec: AgentTaskSpec, volumes: list, ids: dict, argv: list[str]) -> list[str]:
    """``argv`` run through ``mountns.py``: a private mount namespace with the task's host-path
    volumes bind-mounted (relative container paths under the sandbox), then the task's user."""
    if os.geteuid() != 0:
        raise RunnerError(
            "Failed to launch container: mounting volumes needs a mount namespace, which needs"
            " root (a real agent with filesystem/linux runs as root too)"
        )
    mounts = []
    for v in volumes:
        host, target = (v or {}).get("host_path"), (v or {}).get("container_path")
        if not isinstance(host, str) or not isinstance(target, str) or not target:
            raise RunnerError(
                f"Failed to launch container: volume {v!r}: localmesos mounts host paths given as"
                " {container_path, host_path, mode}"
            )
        mounts.append(
            {
                "host": host,
                "target": target if os.path.isabs(target) else os.path.join(spec.sandbox, target),
                "ro": (v.get("mode") or "RW") == "RO",
            }
        )
    plan = {
        "mounts": mounts,
        "uid": ids.get("user"),
        "gid": ids.get("group"),
        "groups": ids.get("extra_groups") or [],
    }
    helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mountns.py")
    return [sys.executable, "-I", helper, json.dumps(plan), "--", *argv]


class LocalProcessRunner:
    """Runs a command as a local process in its sandbox (the Mesos containerizer, no image)."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._killed = False

    async def start(self, spec: AgentTaskSpec, report: ReportFn) -> None:
        kwargs: dict = {}
        env = dict(spec.env)
        user = spec.user
        if user:
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                raise RunnerError(
                    f"Failed to switch to user {user!r}: no such user on this agent"
                ) from None
            if os.geteuid() == 0:
                groups = os.getgrouplist(user, pw.pw_gid)
                kwargs.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=groups)
                with contextlib.suppress(OSError):
                    os.chown(spec.sandbox, pw.pw_uid, pw.pw_gid)
            elif pw.pw_uid != os.geteuid():
                me = pwd.getpwuid(os.geteuid()).pw_name
                raise RunnerError(
                    f"Failed to switch to user {user!r}: the agent runs as {me!r}, not root"
                )
        argv = argv_of(spec.command)
        if not argv[0]:
            raise RunnerError("command.value is empty")
        volumes = (spec.container or {}).get("volumes") or []
        if volumes:
            # The agent lets these through only with filesystem/linux (its --isolation).
            argv = _with_mounts(spec, volumes, kwargs, argv)
            kwargs = {}
        stdout = open(os.path.join(spec.sandbox, "stdout"), "ab")  # noqa: SIM115
        stderr = open(os.path.join(spec.sandbox, "stderr"), "ab")  # noqa: SIM115
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=spec.sandbox,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                **kwargs,
            )
        except (OSError, ValueError) as e:
            raise RunnerError(f"Failed to launch command {argv!r}: {e}") from None
        finally:
            stdout.close()
            stderr.close()

    async def wait(self) -> tuple[int | None, str]:
        assert self._proc is not None
        code = await self._proc.wait()
        if code < 0:
            # Mesos's WSTRINGIFY: "Command terminated with signal Terminated".
            name = signal.strsignal(-code) or f"signal {-code}"
            return None, f"Command terminated with signal {name}"
        return code, f"Command exited with status {code}"

    async def kill(self, grace: float) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        self._killed = True
        self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), timeout=max(grace, 0))
        except TimeoutError:
            self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)
