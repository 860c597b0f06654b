"""Run a task's Docker image in the real Docker engine, as Mesos's Docker containerizer does.

What is honoured: the image (pulled when missing or when ``force_pull_image``, the pull shown as a
TASK_STARTING message), HOST or BRIDGE network with ``port_mappings`` whose host ports must be
among the task's ports, legacy volumes ``{container_path, host_path, mode}`` (a relative host path
is inside the sandbox), the ``user``/``label``/``env``/``workdir``/``hostname``/``volume`` docker
parameters, the command's environment, and the sandbox mounted at ``/mnt/mesos/sandbox``.
Commands: ``shell: true`` runs ``/bin/sh -c value`` (entrypoint replaced, as Mesos does);
``shell: false`` appends value and arguments to the image's entrypoint. The container is named
``mesos-<agent_id>.<task_id>`` and labelled so orphans can be found; its output is copied to the
sandbox's ``stdout``/``stderr``; kill is ``docker stop -t grace``, and the container is removed
once it has ended.

Tasks of the MESOS containerizer with a Docker image (GPU tasks) run here too: host network, the
image's user switched to ``command.user``, and ``value`` with ``arguments`` as its full argv.

Every engine call runs in a thread of its own: the ``docker`` package is synchronous, and calls
such as ``wait`` or following logs last as long as the task, which would exhaust the event
loop's default executor (a few threads) with a few running notebooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import re
import threading
from collections.abc import Callable
from typing import Any

from .runner import AgentTaskSpec, ReportFn, RunnerError, docker_image

log = logging.getLogger(__name__)

SANDBOX_MOUNT = "/mnt/mesos/sandbox"
LABEL_PREFIX = "org.mesosspawner.localmesos"
SUPPORTED_PARAMETERS = (
    "user",
    "label",
    "env",
    "env-file",
    "workdir",
    "hostname",
    "volume",
    "security-opt",
    "cap-drop",
    "cap-add",
)
# Variables the agent computes for every task that also make sense inside a container; the rest of
# the agent's own environment (PATH, HOME, ...) must not leak into the image.
_PASSED_PREFIXES = ("MESOS_",)
_PASSED_NAMES = ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")


def container_name(agent_id: str, task_id: str) -> str:
    """``mesos-<agent_id>.<task_id>`` with characters Docker refuses replaced (plus a short hash
    of the original when anything was replaced, so distinct task ids keep distinct names)."""
    raw = f"{agent_id}.{task_id}"
    safe = re.sub(r"[^a-zA-Z0-9_.-]", "_", raw)
    if safe != raw:
        safe += "-" + hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"mesos-{safe}"


def _parameters(docker: dict) -> list[tuple[str, str]]:
    params = []
    for p in docker.get("parameters") or []:
        key, value = str(p.get("key", "")), str(p.get("value", ""))
        if key not in SUPPORTED_PARAMETERS:
            raise RunnerError(
                f"Unsupported docker parameter {key!r}: localmesos supports "
                + ", ".join(SUPPORTED_PARAMETERS)
            )
        params.append((key, value))
    return params


def _split_kv(value: str, what: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not key:
        raise RunnerError(f"docker parameter {what}={value!r} must look like NAME=VALUE")
    return key, val if sep else ""


def _volume(spec: AgentTaskSpec, volume: dict) -> tuple[str, dict]:
    container_path = volume.get("container_path")
    host_path = volume.get("host_path")
    if not container_path or not host_path:
        raise RunnerError(
            f"Volume {volume!r} needs container_path and host_path "
            "(the legacy form {container_path, host_path, mode: RW|RO})"
        )
    mode = str(volume.get("mode", "RW")).upper()
    if mode not in ("RW", "RO"):
        raise RunnerError(f"Volume {container_path!r} has mode {mode!r}; use RW or RO")
    if not os.path.isabs(host_path):
        host_path = os.path.join(spec.sandbox, host_path)
    if not os.path.isabs(container_path):
        container_path = os.path.join(SANDBOX_MOUNT, container_path)
    return host_path, {"bind": container_path, "mode": mode.lower()}


def _command(spec: AgentTaskSpec, mesos_containerizer: bool) -> tuple[list[str] | None, list[str]]:
    """(entrypoint override or None, command) under the containerizer's rules."""
    cmd = spec.command or {}
    value = cmd.get("value")
    arguments = [str(a) for a in cmd.get("arguments") or []]
    if cmd.get("shell", True):
        if not value:
            raise RunnerError("command.shell is true but command.value is empty")
        return ["/bin/sh"], ["-c", str(value)]
    if mesos_containerizer and value:
        return [str(value)], arguments[1:]
    return None, ([str(value)] if value else []) + arguments


def read_env_file(path: str) -> dict[str, str]:
    """Docker's ``--env-file`` format: NAME=VALUE lines; blank lines and ``#`` comments skipped."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as e:
        raise RunnerError(f"docker parameter env-file: cannot read {path}: {e.strerror}") from None
    env = {}
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if sep:
            env[name.strip()] = value
    return env


# src/slave/containerizer/docker.cpp: MIN_CPU_SHARES, CPU_SHARES_PER_CPU, MIN_MEMORY.
MIN_CPU_SHARES = 2
CPU_SHARES_PER_CPU = 1024
MIN_MEMORY_MB = 32


def docker_limits(cpus: float, mem: float) -> dict[str, int]:
    """``containers.create`` limits the Docker containerizer sets from the task's resources."""
    out = {}
    if cpus > 0:
        out["cpu_shares"] = max(int(cpus * CPU_SHARES_PER_CPU), MIN_CPU_SHARES)
    if mem > 0:
        out["mem_limit"] = int(max(mem, MIN_MEMORY_MB) * 1024 * 1024)
    return out


def container_config(spec: AgentTaskSpec, host_ip: str = "127.0.0.1") -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create`` from a AgentTaskSpec (validates; reads
    only an ``env-file`` parameter's file from the sandbox)."""
    container = spec.container or {}
    image = docker_image(container)
    if not image:
        raise RunnerError("The task's container names no Docker image")
    mesos_containerizer = container.get("type", "DOCKER") == "MESOS"
    docker = {} if mesos_containerizer else (container.get("docker") or {})
    name = container_name(spec.agent_id, spec.task_id)

    env = {
        k: v for k, v in spec.env.items() if k.startswith(_PASSED_PREFIXES) or k in _PASSED_NAMES
    }
    for var in (spec.command.get("environment") or {}).get("variables") or []:
        if isinstance(var, dict) and "name" in var:
            env[str(var["name"])] = str(var.get("value", ""))
    env["MESOS_SANDBOX"] = SANDBOX_MOUNT
    env["MESOS_CONTAINER_NAME"] = name

    labels = {
        LABEL_PREFIX: "1",
        f"{LABEL_PREFIX}.agent_id": spec.agent_id,
        f"{LABEL_PREFIX}.framework_id": spec.framework_id,
        f"{LABEL_PREFIX}.task_id": spec.task_id,
    }
    volumes = {spec.sandbox: {"bind": SANDBOX_MOUNT, "mode": "rw"}}
    for volume in container.get("volumes") or []:
        host_path, bind = _volume(spec, volume)
        volumes[host_path] = bind

    kwargs: dict[str, Any] = {}
    user = spec.user if mesos_containerizer else None
    for key, value in _parameters(docker):
        if key == "user":
            user = value
        elif key == "label":
            k, v = _split_kv(value, key)
            labels[k] = v
        elif key == "env":
            k, v = _split_kv(value, key)
            env[k] = v
        elif key == "volume":
            parts = value.split(":")
            if len(parts) not in (2, 3) or not os.path.isabs(parts[0]):
                raise RunnerError(
                    f"docker parameter volume={value!r} must be /host:/container[:ro]"
                )
            volumes[parts[0]] = {"bind": parts[1], "mode": parts[2] if len(parts) == 3 else "rw"}
        elif key == "env-file":
            # The docker CLI reads it on the agent, relative to the executor's directory: the
            # sandbox. Variables given with -e win, as with `docker run`.
            path = value if os.path.isabs(value) else os.path.join(spec.sandbox, value)
            for k, v in read_env_file(path).items():
                env.setdefault(k, v)
        elif key == "workdir":
            kwargs["working_dir"] = value
        elif key in ("security-opt", "cap-drop", "cap-add"):
            # Repeatable, as `docker run --cap-drop=ALL --cap-add=...`.
            kwargs.setdefault(key.replace("-", "_"), []).append(value)
        elif key == "hostname":
            kwargs["hostname"] = value

    network = str(docker.get("network", "HOST")).upper()
    mappings = docker.get("port_mappings") or []
    ports: dict[str, tuple[str, int]] = {}
    if network == "HOST":
        if mappings:
            raise RunnerError("Port mappings are only supported with network BRIDGE, not HOST")
        kwargs["network_mode"] = "host"
    elif network == "BRIDGE":
        kwargs["network_mode"] = "bridge"
        for m in mappings:
            try:
                host_port, container_port = int(m["host_port"]), int(m["container_port"])
            except (KeyError, TypeError, ValueError):
                raise RunnerError(
                    f"Port mapping {m!r} needs integer host_port and container_port"
                ) from None
            if host_port not in spec.ports:
                raise RunnerError(
                    f"Port mapping host_port {host_port} is not among the task's port resources "
                    f"{sorted(spec.ports)}"
                )
            protocol = str(m.get("protocol", "tcp")).lower()
            if protocol not in ("tcp", "udp"):
                raise RunnerError(f"Port mapping protocol {protocol!r} must be tcp or udp")
            ports[f"{container_port}/{protocol}"] = (host_ip, host_port)
        kwargs["ports"] = ports
    else:
        raise RunnerError(f"Docker network {network!r} is not supported; use HOST or BRIDGE")

    entrypoint, command = _command(spec, mesos_containerizer)
    if entrypoint is not None:
        kwargs["entrypoint"] = entrypoint
    if command:
        kwargs["command"] = command
    if user:
        kwargs["user"] = user
    if docker.get("privileged"):
        kwargs["privileged"] = True
    if not mesos_containerizer:
        # As the Docker containerizer runs it: `docker run --cpu-shares --memory`, a hard
        # memory limit and CPU weight from the task's resources (no CFS quota by default).
        kwargs.update(docker_limits(spec.cpus, spec.mem))
    return {
        "image": image,
        "name": name,
        "environment": env,
        "labels": labels,
        "volumes": volumes,
        **kwargs,
    }


def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future:
    """Run a blocking call in a new daemon thread; the returned future resolves on its result."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def target() -> None:
        try:
            result, error = fn(*args, **kwargs), None
        except BaseException as e:  # noqa: BLE001 - handed to the awaiting coroutine
            result, error = None, e
        with contextlib.suppress(RuntimeError):  # the loop may be closed by now
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(
        target=target, name=f"docker-{getattr(fn, '__name__', 'call')}", daemon=True
    ).start()
    return future


def _default_client():
    try:
        import docker
    except ImportError:
        missing = "the docker package is missing: pip install 'mesosspawner[images]'"
        raise RuntimeError(missing) from None
    return docker.from_env(version="auto", timeout=120)


class DockerRunner:
    """Runs one task in a Docker container (TaskRunner interface of ``runner.py``)."""

    def __init__(
        self,
        client_factory: Callable[[], Any] = _default_client,
        host_ip: str = "127.0.0.1",
        docker_config: str | None = None,
    ) -> None:
        self._client_factory = client_factory
        self._docker_config = docker_config
        self._host_ip = host_ip
        self._client = None
        self._container = None
        self._spec: AgentTaskSpec | None = None
        self._killed = False
        self._abandoned = False
        self._log_jobs: list[asyncio.Future] = []
        self._result: tuple[int | None, str] | None = None

    async def start(self, spec: AgentTaskSpec, report: ReportFn) -> None:
        self._spec = spec
        config = container_config(spec, self._host_ip)
        image = config["image"]
        try:
            self._client = await _in_thread(self._client_factory)
            await _in_thread(self._client.ping)
        except Exception as e:  # noqa: BLE001 - any engine failure is a launch failure
            raise RunnerError(
                f"Cannot run Docker image {image!r}: no Docker engine answers ({e})"
            ) from None
        docker_info = (spec.container or {}).get("docker") or {}
        force = bool(docker_info.get("force_pull_image"))
        try:
            if force or not await _in_thread(self._has_image, image):
                report("TASK_STARTING", f"pulling image {image}")
                await _in_thread(self._pull, image)
            await _in_thread(self._remove_stale, config["name"])
        except Exception:
            await self._cleanup()
            raise
        try:
            self._container = await _in_thread(self._create_and_start, config)
        except asyncio.CancelledError:
            self._abandoned = True  # the agent gave up on the launch; the thread cleans up
            raise
        except Exception as e:  # noqa: BLE001 - docker.errors.APIError and friends
            await self._cleanup()
            raise RunnerError(f"Failed to run Docker image {image!r}: {_explain(e)}") from None
        for stream in ("stdout", "stderr"):
            path = os.path.join(spec.sandbox, stream)
            self._log_jobs.append(_in_thread(self._copy_log, stream, path))
        if self._killed:
            await self.kill(spec.kill_grace)

    def _create_and_start(self, config: dict[str, Any]):
        container = self._client.containers.create(**config)
        try:
            if not self._abandoned:
                container.start()
        except Exception:
            container.remove(force=True)
            raise
        if self._abandoned:
            container.remove(force=True)
            return None
        return container

    def _has_image(self, image: str) -> bool:
        import docker

        try:
            self._client.images.get(image)
            return True
        except docker.errors.ImageNotFound:
            return False

    def _auth_config(self, image: str) -> dict | None:
        """The agent's login for the image's registry (``--docker_config``), as Mesos's Docker
        containerizer gives ``docker pull`` in a private HOME: never in the task's sandbox."""
        if not self._docker_config:
            return None
        from ..images.errors import ImagesError
        from ..images.registry import credentials_for, load_docker_config

        first = image.split("/", 1)[0]
        registry = first if "/" in image and ("." in first or ":" in first) else "docker.io"
        try:
            login = credentials_for(registry, load_docker_config(self._docker_config))
        except ImagesError as e:
            raise RunnerError(f"Failed to pull image {image!r}: --docker_config: {e}") from None
        return login.auth_config() if login else None

    def _pull(self, image: str) -> None:
        auth = self._auth_config(image)
        try:
            for line in self._client.api.pull(image, stream=True, decode=True, auth_config=auth):
                if "error" in line:
                    raise RunnerError(f"Failed to pull image {image!r}: {line['error']}")
        except RunnerError:
            raise
        except Exception as e:  # noqa: BLE001
            raise RunnerError(f"Failed to pull image {image!r}: {_explain(e)}") from None

    def _remove_stale(self, name: str) -> None:
        """A container left with this name by an earlier run of the same task id is an orphan."""
        import docker

        with contextlib.suppress(docker.errors.NotFound):
            self._client.containers.get(name).remove(force=True)

    def _copy_log(self, stream: str, path: str) -> None:
        container = self._container
        try:
            chunks = container.logs(
                stdout=stream == "stdout", stderr=stream == "stderr", stream=True, follow=True
            )
            with open(path, "ab") as out:
                for chunk in chunks:
                    out.write(chunk)
                    out.flush()
        except Exception as e:  # noqa: BLE001 - logs are best effort
            log.debug("copying %s of %s stopped: %s", stream, container.name, e)

    async def wait(self) -> tuple[int | None, str]:
        if self._result is not None:
            return self._result
        assert self._container is not None, "wait() before a successful start()"
        try:
            self._result = await self._wait_and_remove()
        except asyncio.CancelledError:
            # The agent stopped: a killed task's container goes; a running one stays running
            # (an agent that goes away leaves its tasks running, as Mesos agents do).
            if self._killed:
                _in_thread(self._remove_quietly)
            raise
        return self._result

    async def _wait_and_remove(self) -> tuple[int | None, str]:
        try:
            status = await _in_thread(self._container.wait)
            code = int(status.get("StatusCode", -1))
            error = (status.get("Error") or {}).get("Message")
        except Exception as e:  # noqa: BLE001 - the engine went away
            code, error = None, f"lost the container: {_explain(e)}"
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*self._log_jobs), timeout=10)
        await self._cleanup()
        if error or code is None:
            return None, f"Container failed: {error}"
        if self._killed and code in (137, 143):
            return None, f"Container stopped by docker stop (exit status {code})"
        return code, f"Container exited with status {code}"

    async def kill(self, grace: float) -> None:
        self._killed = True
        container = self._container
        if container is None:
            return
        timeout = max(0, math.ceil(grace))  # docker stop takes whole seconds; never cut short
        try:
            await _in_thread(container.stop, timeout=timeout)
        except Exception as e:  # noqa: BLE001 - already gone is fine
            log.debug("docker stop %s: %s", container.name, e)

    def _remove_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self._container.remove(force=True)
        with contextlib.suppress(Exception):
            self._client.close()

    async def _cleanup(self) -> None:
        container, client = self._container, self._client
        if container is not None:
            with contextlib.suppress(Exception):
                await _in_thread(container.remove, force=True)
        if client is not None:
            with contextlib.suppress(Exception):
                await _in_thread(client.close)


def _explain(error: Exception) -> str:
    explanation = getattr(error, "explanation", None)
    return str(explanation or error)
