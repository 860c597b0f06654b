"""An agent: runs tasks in sandboxes and sends their status updates until the master acks them.

It is the master's ``AgentLink`` (launch / kill / acknowledge / shutdown_framework) and talks back
through a ``MasterLink`` (``status_update``), directly in-process or over HTTP (remote_agent.py).
Updates follow Mesos's status update manager: one unacknowledged update per task in flight,
resent with backoff, the next one sent only after the previous is acknowledged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import pwd
import time
import uuid as uuidlib
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from mesosspawner.mesos.resources import (
    Attribute,
    Resource,
    ResourceError,
    merge,
    ranges_of,
    resource_from_json,
    scalar,
)

from ..mesos.states import TERMINAL_STATES as TERMINAL
from .config import Containerization
from .fetcher import FetchError, fetch_uris
from .health import HealthPolicy, HealthState, probe
from .runner import AgentTaskSpec, LocalProcessRunner, RunnerError, docker_image

log = logging.getLogger("mesosspawner.localmesos.agent")

MAX_RETRY = 600.0
# stout's os::host_default_path(): the PATH a Mesos task gets when its command sets none.
HOST_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class MasterLink(Protocol):
    def status_update(
        self, agent_id: str, framework_id: str, status: dict, latest_state: str
    ) -> None: ...


@dataclass
class AgentTask:
    framework_id: str
    info: dict
    role: str
    spec: AgentTaskSpec
    runner: object = None
    state: str = "TASK_STAGING"
    statuses: list[dict] = field(default_factory=list)
    pending: deque = field(default_factory=deque)
    retry_handle: asyncio.TimerHandle | None = None
    retry_delay: float = 10.0
    kill_requested: bool = False
    killed_by_health_check: bool = False
    job: asyncio.Task | None = None
    health_job: asyncio.Task | None = None
    container_status: dict | None = None
    started: float = 0.0
    gpus: list[int] = field(default_factory=list)


def _owner(user: str | None) -> tuple[int | None, int | None]:
    """uid and gid the agent gives sandbox files of a task run as ``user`` (when root)."""
    if not user or os.geteuid() != 0:
        return None, None
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return None, None
    return pw.pw_uid, pw.pw_gid


def _make_sandbox(path: str, user: str | None) -> None:
    """As Mesos's ``createSandboxDirectory``: private task data, so mode 0750, owned by the
    task's user (its command.user, else the framework's) when the agent runs as root. The
    fetcher's files in it are the user's too, so the task can delete its one-time env file."""
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o750)
    uid, gid = _owner(user)
    if uid is not None:
        os.chown(path, uid, -1 if gid is None else gid)


def new_uuid() -> str:
    """A status update uuid as v1 JSON carries protobuf bytes: base64 of the 16 raw bytes."""
    return base64.b64encode(uuidlib.uuid4().bytes).decode()


class LocalAgent:
    def __init__(
        self,
        hostname: str,
        resources: list[Resource],
        attributes: list[Attribute],
        work_dir: str,
        *,
        port: int = 5051,
        status_retry_interval: float = 10.0,
        executor_registration_timeout: float = 60.0,
        containerization: Containerization | None = None,
    ) -> None:
        self.hostname = hostname
        # --isolation / --image_providers: what this agent does beyond a default mesos-agent.
        self.containerization = containerization or Containerization()
        # mesos-agent --executor_registration_timeout (1 min): an image pull counts against it.
        self.executor_registration_timeout = executor_registration_timeout
        self.resources = resources
        self.attributes = attributes
        self.work_dir = work_dir
        self.port = port
        self.status_retry_interval = status_retry_interval
        self.agent_id: str | None = None
        self.master: MasterLink | None = None
        self.tasks: dict[tuple[str, str], AgentTask] = {}
        self.frameworks: dict[str, dict] = {}
        self.free_gpus = list(range(int(scalar(resources, "gpus"))))
        self.stopped = False

    # --------------------------------------------------------------- registration

    def registered(self, agent_id: str, master: MasterLink) -> None:
        """Connected (or reconnected) to a master: resend every unacknowledged update."""
        self.agent_id = agent_id
        self.master = master
        for task in self.tasks.values():
            task.spec.agent_id = agent_id
            if task.pending:
                self._cancel_retry(task)
                task.retry_delay = self.status_retry_interval
                self._send_head(task)

    def disconnected(self) -> None:
        self.master = None

    def forget_uncheckpointed(self) -> None:
        """An agent restart: tasks of frameworks that do not checkpoint die with it, silently
        (nothing was written down to recover them from)."""
        for key, at in list(self.tasks.items()):
            if self.frameworks.get(at.framework_id, {}).get("checkpoint"):
                continue
            self._cancel_retry(at)
            at.pending.clear()
            at.state = "TASK_LOST"  # terminal: no update is sent for it any more
            if at.runner is not None:
                asyncio.get_running_loop().create_task(at.runner.kill(0))
            elif at.job is not None:
                at.job.cancel()
            del self.tasks[key]
            self.free_gpus = sorted(self.free_gpus + at.gpus)

    def reregistration_tasks(self) -> list[dict]:
        """The running tasks as the agent reports them when re-registering."""
        return [
            {
                "framework_id": {"value": t.framework_id},
                "task_info": t.info,
                "state": t.state,
                "statuses": t.statuses,
                "role": t.role,
            }
            for t in self.tasks.values()
        ]

    # --------------------------------------------------------------- AgentLink

    def launch(self, framework: dict, task: dict) -> None:
        fid = (framework.get("id") or {}).get("value", "")
        tid = (task.get("task_id") or {}).get("value", "")
        self.frameworks[fid] = framework
        try:
            res = merge(resource_from_json(r) for r in task.get("resources") or [])
        except ResourceError:
            res = []
        role = ((task.get("resources") or [{}])[0].get("allocation_info") or {}).get("role", "*")
        ngpus = int(scalar(res, "gpus"))
        gpus, self.free_gpus = self.free_gpus[:ngpus], self.free_gpus[ngpus:]
        ports = [p for b, e in ranges_of(res, "ports") for p in range(b, e + 1)][:1000]
        sandbox = os.path.join(
            self.work_dir,
            "slaves",
            self.agent_id or "unregistered",
            "frameworks",
            fid,
            "executors",
            tid,
            "runs",
            "latest",
        )
        command = task.get("command") or {}
        policy = task.get("kill_policy") or {}
        grace = 3.0
        with contextlib.suppress(TypeError, ValueError, KeyError):
            grace = int(policy["grace_period"]["nanoseconds"]) / 1e9
        spec = AgentTaskSpec(
            task_id=tid,
            framework_id=fid,
            agent_id=self.agent_id or "",
            name=str(task.get("name") or ""),
            sandbox=sandbox,
            command=command,
            container=task.get("container"),
            env={},
            ports=ports,
            gpus=gpus,
            cpus=scalar(res, "cpus"),
            mem=scalar(res, "mem"),
            kill_grace=grace,
            user=command.get("user") or framework.get("user") or None,
        )
        checkpoint = bool(framework.get("checkpoint"))
        spec.env = self._environment(spec, command, role, checkpoint)
        at = AgentTask(fid, task, role, spec, gpus=gpus, retry_delay=self.status_retry_interval)
        at.started = asyncio.get_running_loop().time()
        self.tasks[(fid, tid)] = at
        at.job = asyncio.get_running_loop().create_task(self._run(at))

    def kill(self, framework_id: str, task_id: str, grace: float) -> None:
        at = self.tasks.get((framework_id, task_id))
        if at is None or at.state in TERMINAL:
            return
        at.kill_requested = True
        fw_caps = {
            c.get("type") for c in self.frameworks.get(framework_id, {}).get("capabilities") or []
        }
        if at.runner is None:
            # Not started yet (e.g. pulling an image): the run loop sees kill_requested.
            if at.job is not None:
                at.job.cancel()
            return
        if "TASK_KILLING_STATE" in fw_caps and at.state == "TASK_RUNNING":
            self._update(at, "TASK_KILLING", "SOURCE_EXECUTOR", message="Killing the task")
        asyncio.get_running_loop().create_task(at.runner.kill(grace))

    def acknowledge(self, framework_id: str, task_id: str, uuid: str) -> None:
        at = self.tasks.get((framework_id, task_id))
        if at is None or not at.pending or at.pending[0]["uuid"] != uuid:
            return
        at.pending.popleft()
        self._cancel_retry(at)
        at.retry_delay = self.status_retry_interval
        if at.pending:
            self._send_head(at)
        elif at.state in TERMINAL:
            self.tasks.pop((framework_id, task_id), None)
            self.free_gpus = sorted(self.free_gpus + at.gpus)

    def shutdown_framework(self, framework_id: str) -> None:
        for (fid, tid), at in list(self.tasks.items()):
            if fid != framework_id:
                continue
            if at.state in TERMINAL:
                self.tasks.pop((fid, tid), None)
                self._cancel_retry(at)
                self.free_gpus = sorted(self.free_gpus + at.gpus)
            else:
                self.kill(fid, tid, at.spec.kill_grace)

    async def stop(self, kill_tasks: bool = True) -> None:
        """Stop the agent (a machine going down): its processes die, no updates are sent."""
        self.stopped = True
        self.master = None
        jobs = []
        for at in self.tasks.values():
            self._cancel_retry(at)
            if kill_tasks and at.runner is not None:
                with contextlib.suppress(Exception):
                    await at.runner.kill(0)
            if at.job is not None:
                at.job.cancel()
                jobs.append(at.job)
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job

    # --------------------------------------------------------------- running a task

    def _environment(
        self, spec: AgentTaskSpec, command: dict, role: str, checkpoint: bool
    ) -> dict[str, str]:
        """What Mesos's command executor hands a command task: its own MESOS_*/LIBPROCESS_*
        variables, the host's default PATH and the command's environment, nothing of the
        agent's (no HOME, no USER, no MESOS_TASK_ID: MESOS_EXECUTOR_ID is the task id)."""
        env = {
            "MESOS_SANDBOX": spec.sandbox,
            "MESOS_DIRECTORY": spec.sandbox,
            "MESOS_EXECUTOR_ID": spec.task_id,
            "MESOS_FRAMEWORK_ID": spec.framework_id,
            "MESOS_SLAVE_ID": spec.agent_id,
            "MESOS_SLAVE_PID": f"slave(1)@127.0.0.1:{self.port}",
            "MESOS_AGENT_ENDPOINT": f"127.0.0.1:{self.port}",
            "MESOS_ALLOCATION_ROLE": role,
            "MESOS_CHECKPOINT": "1" if checkpoint else "0",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
            "MESOS_HTTP_COMMAND_EXECUTOR": "0",
            "LIBPROCESS_IP": "127.0.0.1",
            "LIBPROCESS_PORT": "0",
            "PATH": HOST_DEFAULT_PATH,
        }
        for var in (command.get("environment") or {}).get("variables") or []:
            if isinstance(var, dict) and "name" in var:
                env[str(var["name"])] = str(var.get("value", ""))
        # No NVIDIA_/CUDA_VISIBLE_DEVICES: real Mesos isolates GPUs through device cgroups and
        # sets neither, so a framework must not come to rely on them here.
        return env

    def _runner_for(self, spec: AgentTaskSpec):
        image = docker_image(spec.container)
        if image is None:
            return LocalProcessRunner()
        try:
            from .docker_runner import DockerRunner
        except Exception as e:  # noqa: BLE001 - any import failure means "no docker support"
            raise RunnerError(
                f"Cannot run Docker image {image!r}: localmesos Docker support unavailable ({e})"
            ) from None
        return DockerRunner(docker_config=self.containerization.docker_config)

    def _refusal(self, at: AgentTask) -> tuple[str, str, str] | None:
        """Why a real agent with default flags refuses the task before it starts:
        (state, reason, message), or None."""
        spec = at.spec
        if spec.user:
            try:
                pwd.getpwnam(spec.user)
            except KeyError:
                # The agent chowns the sandbox to the task's user before anything runs.
                caps = {
                    c.get("type")
                    for c in self.frameworks.get(at.framework_id, {}).get("capabilities") or []
                    if isinstance(c, dict)
                }
                state = "TASK_DROPPED" if "PARTITION_AWARE" in caps else "TASK_LOST"
                return (
                    state,
                    "REASON_EXECUTOR_TERMINATED",
                    f"Failed to create executor directory '{spec.sandbox}': Failed to chown "
                    f"directory to '{spec.user}': No such user '{spec.user}'",
                )
        container = spec.container or {}
        image = docker_image(container)
        if image is not None and container.get("type") == "MESOS":
            if not self.containerization.images:
                # A default agent has no image provider (--image_providers unset).
                return (
                    "TASK_FAILED",
                    "REASON_CONTAINER_LAUNCH_FAILED",
                    "Failed to launch container: Unsupported container image type: DOCKER",
                )
        elif image is None and container.get("volumes"):
            if not self.containerization.host_volumes:
                # Without the filesystem/linux isolator (not in the default --isolation) the
                # Mesos containerizer refuses volumes.
                return (
                    "TASK_FAILED",
                    "REASON_CONTAINER_LAUNCH_FAILED",
                    "Failed to launch container: Volumes in ContainerInfo is not supported",
                )
        return None

    async def _run(self, at: AgentTask) -> None:
        spec = at.spec
        refusal = self._refusal(at)
        if refusal is not None:
            state, reason, message = refusal
            self._update(at, state, "SOURCE_AGENT", reason=reason, message=message)
            return
        try:
            _make_sandbox(spec.sandbox, spec.user)
            uris = spec.command.get("uris") or []
            if uris:
                try:
                    await fetch_uris(uris, spec.sandbox, *_owner(spec.user))
                except FetchError as e:
                    raise RunnerError(f"Failed to fetch all URIs for container: {e}") from None
            runner = self._runner_for(spec)
            if docker_image(spec.container) is None:
                self._update(at, "TASK_STARTING", "SOURCE_EXECUTOR")
                await runner.start(spec, _ignore_report)
            else:
                # As a real agent: the image is pulled before any executor runs, so the task
                # stays STAGING without a word, and the pull counts against the executor
                # registration timeout. TASK_STARTING comes from the executor afterwards.
                try:
                    await asyncio.wait_for(
                        runner.start(spec, _ignore_report), self.executor_registration_timeout
                    )
                except TimeoutError:
                    raise RunnerError(
                        "Failed to launch container: discarded; "
                        "Abnormal executor termination: unknown container"
                    ) from None
                self._update(at, "TASK_STARTING", "SOURCE_EXECUTOR")
            at.runner = runner
        except asyncio.CancelledError:
            if at.kill_requested and not self.stopped:
                self._update(at, "TASK_KILLED", "SOURCE_EXECUTOR", message="Killed before start")
            raise
        except RunnerError as e:
            self._update(
                at,
                "TASK_FAILED",
                "SOURCE_AGENT",
                reason="REASON_CONTAINER_LAUNCH_FAILED",
                message=str(e),
            )
            return
        except Exception as e:  # noqa: BLE001 - a runner bug must still end the task
            log.exception("task %s: runner failed", spec.task_id)
            self._update(
                at,
                "TASK_FAILED",
                "SOURCE_AGENT",
                reason="REASON_CONTAINER_LAUNCH_FAILED",
                message=f"Failed to launch the task: {e}",
            )
            return
        if at.kill_requested:
            asyncio.get_running_loop().create_task(runner.kill(spec.kill_grace))
        at.container_status = {
            "container_id": {"value": spec.task_id},
            "network_infos": [{"ip_addresses": [{"ip_address": "127.0.0.1"}]}],
        }
        self._update(at, "TASK_RUNNING", "SOURCE_EXECUTOR", container_status=at.container_status)
        check = at.info.get("health_check")
        if isinstance(check, dict) and check.get("type") in ("HTTP", "TCP", "COMMAND"):
            at.health_job = asyncio.get_running_loop().create_task(self._health(at, check))
        try:
            code, message = await runner.wait()
        finally:
            if at.health_job is not None:
                at.health_job.cancel()
        if self.stopped:
            return
        # As Mesos's command executor: no reason on these; healthy=false after a health kill.
        healthy = False if at.killed_by_health_check else None
        if at.kill_requested:
            self._update(at, "TASK_KILLED", "SOURCE_EXECUTOR", message=message, healthy=healthy)
        elif code == 0:
            self._update(at, "TASK_FINISHED", "SOURCE_EXECUTOR", message=message)
        else:
            self._update(at, "TASK_FAILED", "SOURCE_EXECUTOR", message=message)

    async def _health(self, at: AgentTask, check: dict) -> None:
        """Run the task's health check; report changes; kill after consecutive failures."""
        policy = HealthPolicy.from_check(check)
        state = HealthState(policy)
        loop = asyncio.get_running_loop()
        await asyncio.sleep(policy.delay)
        while at.state == "TASK_RUNNING" and not at.kill_requested:
            ok = await probe(check, at.spec.env, at.spec.sandbox, policy.timeout)
            healthy, kill = state.result(ok, loop.time() - at.started)
            if at.state != "TASK_RUNNING" or at.kill_requested:
                return
            if healthy is not None:
                self._update(
                    at,
                    "TASK_RUNNING",
                    "SOURCE_EXECUTOR",
                    reason="REASON_TASK_HEALTH_CHECK_STATUS_UPDATED",
                    container_status=at.container_status,
                    healthy=healthy,
                )
            if kill:
                at.killed_by_health_check = True
                at.kill_requested = True
                loop.create_task(at.runner.kill(at.spec.kill_grace))
                return
            await asyncio.sleep(policy.interval)

    # --------------------------------------------------------------- status updates

    def _update(
        self,
        at: AgentTask,
        state: str,
        source: str,
        *,
        reason: str | None = None,
        message: str | None = None,
        container_status: dict | None = None,
        healthy: bool | None = None,
    ) -> None:
        if at.state in TERMINAL:
            return
        status: dict = {
            "task_id": {"value": at.spec.task_id},
            "state": state,
            "source": source,
            "agent_id": {"value": self.agent_id or ""},
            "executor_id": {"value": at.spec.task_id},
            "timestamp": time.time(),
            "uuid": new_uuid(),
        }
        if reason:
            status["reason"] = reason
        if message:
            status["message"] = message
        if container_status:
            status["container_status"] = container_status
        if healthy is not None:
            status["healthy"] = healthy
        at.state = state
        at.statuses.append(
            {k: status[k] for k in ("state", "timestamp")}
            | ({"container_status": container_status} if container_status else {})
        )
        at.pending.append(status)
        if len(at.pending) == 1:
            self._send_head(at)

    def _send_head(self, at: AgentTask) -> None:
        if not at.pending or self.stopped:
            return
        if self.master is not None and self.agent_id:
            head = dict(at.pending[0])
            head["agent_id"] = {"value": self.agent_id}
            with contextlib.suppress(Exception):
                self.master.status_update(self.agent_id, at.framework_id, head, at.state)
        loop = asyncio.get_running_loop()
        at.retry_handle = loop.call_later(at.retry_delay, self._retry, at)

    def _retry(self, at: AgentTask) -> None:
        at.retry_handle = None
        at.retry_delay = min(at.retry_delay * 2, MAX_RETRY)
        self._send_head(at)

    @staticmethod
    def _cancel_retry(at: AgentTask) -> None:
        if at.retry_handle is not None:
            at.retry_handle.cancel()
            at.retry_handle = None


def _ignore_report(state: str, message: str) -> None:
    """Runners may describe slow steps; a real agent tells the framework nothing of them."""


class DirectMasterLink:
    """In-process: the agent calls the master's methods directly (next loop turn)."""

    def __init__(self, master) -> None:
        self.master = master

    def status_update(
        self, agent_id: str, framework_id: str, status: dict, latest_state: str
    ) -> None:
        asyncio.get_running_loop().call_soon(
            self.master.agent_status_update, agent_id, framework_id, status, latest_state
        )


class DirectAgentLink:
    """In-process: the master calls the agent directly (next loop turn, like a message)."""

    def __init__(self, agent: LocalAgent) -> None:
        self.agent = agent

    def _soon(self, fn, *args) -> None:
        if not self.agent.stopped:
            asyncio.get_running_loop().call_soon(fn, *args)

    def launch(self, framework: dict, task: dict) -> None:
        self._soon(self.agent.launch, framework, task)

    def kill(self, framework_id: str, task_id: str, grace: float) -> None:
        self._soon(self.agent.kill, framework_id, task_id, grace)

    def acknowledge(self, framework_id: str, task_id: str, uuid: str) -> None:
        self._soon(self.agent.acknowledge, framework_id, task_id, uuid)

    def shutdown_framework(self, framework_id: str) -> None:
        self._soon(self.agent.shutdown_framework, framework_id)
