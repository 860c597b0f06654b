"""Build the v1 ``TaskInfo`` JSON for a notebook from a spec and the placement it won.

Pure. The container rules are Mesos's: the Docker containerizer for CPU and Spark
notebooks, with the user given as the Docker ``user`` parameter (Docker's process never runs
as ``command.user``, which only makes the sandbox the person's); the Mesos containerizer with a
Docker image for GPU notebooks (the Docker containerizer has no GPU support), running as
``command.user``; no image means a plain command task (a process on the agent).

Secrets never travel in the TaskInfo, whatever the kind of task (``secrets_in_env_file``): a real
agent shows a task's environment to anyone who can read its ``/state`` or operator API, and puts
it on ``ps`` (``docker run -e``, ``mesos-containerizer launch --launch_info``). They reach the
task as a one-time env file the fetcher puts in the sandbox, which a start wrapper reads and
deletes before the notebook starts: the image's start script (``docker/base-notebook``) for
images, ``PLAIN_START_SCRIPT`` for plain command tasks.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import posixpath
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import spark as sparkconf
from .mesos.resources import resources_to_json, scalar
from .mesos.wire import duration, id_json, number
from .naming import attempt_task_id, path_component, safe_name
from .placement import Placement
from .spark import SparkSettings

CONTAINERIZERS = ("docker", "mesos")
NETWORK_MODES = ("host", "bridge")
SPARK_PORTS = sparkconf.DRIVER_PORTS  # driver, block manager, libprocess, UI
VOLUME_FIELDS = ("username", "uid", "gid", "servername")
_VOLUME_KEYS = ("host_path", "container_path", "mode")
# Names of the variables that are secret (shell-style patterns, case-insensitive): they reach a
# task only through its one-time env file. ``MesosSpawner.secret_env`` defaults to these.
DEFAULT_SECRET_ENV = (
    "JUPYTERHUB_API_TOKEN",
    "JPY_API_TOKEN",
    "*TOKEN*",
    "*SECRET*",
    "*PASSWORD*",
    "*PASSWD*",
    "*PASS",
    "*_KEY",
    "*APIKEY*",
    "*_PAT",
    "*CREDENTIAL*",
    "*DATABASE_URL",
    "*_DSN",
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Secret values shorter than this are not looked for in public fields (a 3-letter password
# would match half the labels); real tokens are 32 characters or more.
_MIN_SECRET_LEN = 8


@dataclass(frozen=True)
class ServiceURL:
    """Where the notebook listens, but for the port (``JUPYTERHUB_SERVICE_URL``): the port is
    the placement's, so ``build_task_info`` writes the variable once the offer is known."""

    scheme: str  # "http", or "https" with internal SSL
    ip: str  # the bind address (the spawner's ``ip``, 0.0.0.0 by default)
    path: str  # the server's base URL, e.g. /user/alice/

    def at(self, port: int) -> str:
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"{self.scheme}://{host}:{port}{self.path}"


@dataclass(frozen=True)
class TaskSpec:
    """Everything about a notebook task that does not depend on the offer: plain data the
    spawner hands the framework, which turns it into a TaskInfo with ``build_task_info``."""

    task_id: str  # of the first launch; a relaunch gets ``naming.attempt_task_id``
    name: str
    argv: tuple[str, ...]  # the notebook command (e.g. jupyterhub-singleuser --port=...)
    env: Mapping[str, str]
    # JUPYTERHUB_SERVICE_URL, completed with the notebook's port from the placement (None: the
    # variable is left as ``env`` has it, e.g. set by the admin).
    service_url: ServiceURL | None = None
    image: str | None = None  # None = plain command task (a process on the agent)
    containerizer: str = "docker"  # "docker" | "mesos"; GPU tasks need "mesos"
    network_mode: str = "host"  # "host" | "bridge" (bridge: Docker containerizer only)
    container_port: int = 8888  # bridge mode: the notebook's port inside the container
    user: str | None = None  # command.user (a name) for the Mesos containerizer / plain command
    uid: int | None = None  # Docker "user" parameter "uid:gid"
    gid: int | None = None
    volumes: tuple[Mapping[str, str], ...] = ()  # from expand_volumes: container/host path, mode
    labels: Mapping[str, str] = field(default_factory=dict)
    spark: SparkSettings | None = None
    kill_grace_seconds: float = 30.0
    force_pull_image: bool = False
    docker_parameters: tuple[tuple[str, str], ...] = ()
    # One-time URLs of the env file holding the secret variables (``secrets_in_env_file``),
    # which then stay out of the TaskInfo. Each answers once, so each launch attempt gets its
    # own: attempt n the n-th (the last beyond).
    env_file_uris: tuple[str, ...] = ()
    # Which variables are secret (``secrets_in_env_file``'s patterns) and whether they go by
    # env file at all (False: ``env_file_delivery`` off, secrets in the TaskInfo).
    secret_env: tuple[str, ...] = DEFAULT_SECRET_ENV
    env_file_delivery: bool = True
    uris: tuple[str, ...] = ()  # more files the Mesos fetcher puts in the sandbox first
    # Mesos containerizer with an image: its entrypoint (the docker-stacks start script) starts
    # as root and drops to uid/gid; False: it runs as ``user``, which must exist in the image.
    entrypoint_drops_root: bool = True


# Where the fetcher puts the env file, relative to the sandbox. The TaskInfo names it in
# MESOSSPAWNER_ENV_FILE (not secret), which tells an image's start script to read it.
ENV_FILE_NAME = ".mesosspawner.env"
ENV_FILE_VAR = "MESOSSPAWNER_ENV_FILE"

# Plain command tasks: ``/bin/sh -c PLAIN_START_SCRIPT mesosspawner-env ARGV...``. The script
# is fixed and the notebook's argv are positional arguments, so nothing a person controls is
# parsed by a shell. It exports the env file's variables, deletes the file (failing closed if it
# cannot), then execs the notebook: the secrets are never on disk while the notebook runs.
# docker/base-notebook/start-notebook.sh does the same for images.
PLAIN_START_SCRIPT = (
    'f="${MESOS_SANDBOX:-$PWD}/' + ENV_FILE_NAME + '"\n'
    'if [ ! -f "$f" ]; then echo "mesosspawner: the one-time env file $f is missing, so the'
    ' notebook would start without its API token" >&2; exit 66; fi\n'
    'while IFS= read -r line || [ -n "$line" ]; do\n'
    '  case "$line" in [A-Za-z_]*=*) ;; *) echo "mesosspawner: $f: a line is not NAME=VALUE"'
    " >&2; exit 65;; esac\n"
    '  name="${line%%=*}"\n'
    '  case "$name" in *[!A-Za-z0-9_]*) echo "mesosspawner: $f: a bad variable name" >&2;'
    " exit 65;; esac\n"
    '  export "$name=${line#*=}"\n'
    'done < "$f"\n'
    'rm -f -- "$f" && [ ! -e "$f" ] || { echo "mesosspawner: cannot delete $f; the sandbox must'
    " be writable by the notebook's user\" >&2; exit 73; }\n"
    'exec "$@"\n'
)
PLAIN_START_NAME = "mesosspawner-env"  # $0 of the script, in its error messages


def is_secret(name: str, secret_env: Sequence[str] = DEFAULT_SECRET_ENV) -> bool:
    """Whether variable ``name`` matches one of the ``secret_env`` names or shell-style
    patterns (``*TOKEN*``), ignoring case."""
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern.upper()) for pattern in secret_env)


def secrets_in_env_file(
    env: Mapping[str, str],
    secret_env: Sequence[str] = DEFAULT_SECRET_ENV,
    *,
    enabled: bool = True,
) -> tuple[dict[str, str], dict[str, str]]:
    """How a task's variables travel, for every kind of task: (in the TaskInfo, in the
    one-time env file). The secret ones (``is_secret``) go by env file: a real agent shows a
    TaskInfo's environment to anyone who can read its ``/state`` or operator API, and on ``ps``.
    ``enabled`` False (``env_file_delivery`` off): everything in the TaskInfo. The one rule,
    used by the spawner (what the file holds) and by ``build_task_info`` (what stays out)."""
    if not enabled:
        return dict(env), {}
    return split_secrets(env, secret_env)


def split_secrets(
    env: Mapping[str, str], secret_env: Sequence[str] = DEFAULT_SECRET_ENV
) -> tuple[dict[str, str], dict[str, str]]:
    """(plain, secret) by ``secret_env``'s names and patterns, however they then travel."""
    plain = {k: v for k, v in env.items() if not is_secret(k, secret_env)}
    secret = {k: v for k, v in env.items() if is_secret(k, secret_env)}
    return plain, secret


def docker_env_file(env: Mapping[str, str]) -> str:
    """``env`` as an env file (Docker's ``--env-file`` format: one NAME=VALUE a line, no
    quoting), which the start wrappers read."""
    lines = []
    for name in sorted(env):
        value = env[name]
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"environment variable name {name!r} cannot go into an env file")
        if "\n" in value or "\r" in value or "\0" in value:
            raise ValueError(f"environment variable {name}: an env file cannot hold a newline")
        lines.append(f"{name}={value}\n")
    return "".join(lines)


# ---------------------------------------------------------------------------- identity policy
# Who the notebook runs as, and with which containerizer: decided here from plain values (the
# spawner looks up the passwd entry), so the rules are tested without a hub or an agent.

_DOCKER_STACKS_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")


def containerizer_for(containerizer: str, gpus: int) -> str:
    """GPU notebooks use the Mesos containerizer: only it isolates GPUs (Mesos's Docker
    containerizer cannot hand them to a container)."""
    return "mesos" if gpus else containerizer


def command_user(system_user: str | None, *, image: str | None, hub_is_root: bool) -> str | None:
    """``CommandInfo.user``: set when the hub may switch users (it runs as root) or the task runs
    in an image; an ordinary hub's plain tasks run as the agent's user, with no switching."""
    return system_user if (hub_is_root or image) else None


def login_env(name: str, home: str | None = None, shell: str | None = None) -> dict[str, str]:
    """HOME/USER/SHELL of a system user, as a login would set them (the agent's own HOME would
    otherwise leak into a task that runs as someone else). ``home`` None: no passwd entry."""
    if home is None:
        return {"USER": name}
    return {"HOME": home, "USER": name, "SHELL": shell or "/bin/sh"}


def docker_stacks_env(name: str | None, uid: int | None, gid: int | None) -> dict[str, str]:
    """NB_USER/NB_UID/NB_GID: an image's start script that begins as root (the Mesos
    containerizer) maps its user to these before dropping root (docker-stacks convention)."""
    env = {}
    if name and _DOCKER_STACKS_USER.fullmatch(name):
        env["NB_USER"] = name
    if uid is not None:
        env["NB_UID"] = str(uid)
    if gid is not None:
        env["NB_GID"] = str(gid)
    return env


def identity_env(
    system_user: str | None,
    uid: int | None,
    gid: int | None,
    *,
    image: str | None,
    allow_root: bool,
    home: str | None = None,
    shell: str | None = None,
) -> dict[str, str]:
    """The variables that tell the notebook who it runs as: a login's for a plain task, the
    docker-stacks ones for an image (with ALLOW_ROOT, the start script's own opt-in for uid 0)."""
    if not image:
        return login_env(system_user, home, shell) if system_user else {}
    env = docker_stacks_env(system_user, uid, gid)
    if uid == 0 and allow_root:
        env["ALLOW_ROOT"] = "yes"
    return env


def spark_ports_needed(spark: SparkSettings | None) -> int:
    """Host ports a Spark notebook needs beyond the notebook's own (driver, block manager,
    libprocess, UI), or 0 without Spark."""
    return SPARK_PORTS if spark is not None else 0


def labels_for(hub_id: str, username: str, servername: str) -> dict[str, str]:
    """Labels that let a hub find its own tasks (orphans included). Never carries a token."""
    return {
        "jupyterhub.hub": hub_id,
        "jupyterhub.user": safe_name(username),
        "jupyterhub.server": safe_name(servername),
        "jupyterhub.managed-by": "mesosspawner",
    }


# ---------------------------------------------------------------------------- volumes


def expand_volumes(
    volumes: Sequence[Mapping[str, str]],
    *,
    username: str,
    uid: int | None,
    gid: int | None,
    servername: str,
) -> tuple[dict, ...]:
    """Expand ``{username}``, ``{uid}``, ``{gid}``, ``{servername}`` in volume paths, safely.

    Names are substituted as single path components (``naming.path_component``: ordinary
    names as they are, anything else percent-encoded, so never ``/`` or ``..``); no other
    ``{...}`` is allowed. The result must be absolute and lie strictly below
    the template's static base directory (the part before the first placeholder), so no user
    or server name can reach another path. ``ValueError`` names the volume and the problem.
    """
    values = {
        "username": path_component(username),
        "servername": path_component(servername),
        "uid": None if uid is None else str(_int(uid, "uid")),
        "gid": None if gid is None else str(_int(gid, "gid")),
    }
    out = []
    for i, vol in enumerate(volumes):
        what = f"volume {i} ({_short(vol)})"
        if not isinstance(vol, Mapping):
            raise ValueError(f"{what}: expected a mapping with host_path, container_path, mode")
        unknown = sorted(str(k) for k in vol if k not in _VOLUME_KEYS)
        if unknown:
            raise ValueError(
                f"{what}: unknown key(s) {', '.join(unknown)} (use {', '.join(_VOLUME_KEYS)})"
            )
        for key in ("host_path", "container_path"):
            if key not in vol:
                raise ValueError(f"{what}: {key} is missing")
        mode = vol.get("mode", "RW")
        if not isinstance(mode, str) or mode.upper() not in ("RW", "RO"):
            raise ValueError(f"{what}: mode must be RW or RO, not {mode!r}")
        out.append(
            {
                "container_path": _expand_path(vol["container_path"], values, what),
                "host_path": _expand_path(vol["host_path"], values, what),
                "mode": mode.upper(),
            }
        )
    return tuple(out)


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _expand_path(template: Any, values: Mapping[str, str | None], what: str) -> str:
    if not isinstance(template, str) or not template.startswith("/"):
        raise ValueError(f"{what}: path {template!r} must be an absolute path (start with '/')")
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ValueError(f"{what}: path {template!r} has a stray brace ({e})") from None
    literal_skeleton = "/".join(p[0] for p in parts)
    if "\x00" in literal_skeleton or ":" in literal_skeleton:
        # Docker joins host:container:mode with ':'
        raise ValueError(f"{what}: path {template!r} must not contain NUL or ':'")
    if ".." in literal_skeleton.split("/"):
        raise ValueError(f"{what}: path {template!r} must not contain '..'")
    pieces: list[str] = []
    base: str | None = None
    for literal, name, spec, conversion in parts:
        pieces.append(literal)
        if name is None:
            continue
        if name not in VOLUME_FIELDS or spec or conversion:
            allowed = ", ".join("{" + f + "}" for f in VOLUME_FIELDS)
            shown = "{" + name + ("!" + conversion if conversion else "")
            shown += (":" + spec if spec else "") + "}"
            raise ValueError(f"{what}: {shown} is not allowed in {template!r}; use {allowed}")
        value = values[name]
        if value is None:
            raise ValueError(f"{what}: {template!r} uses {{{name}}} but no {name} is set")
        if base is None:
            base = posixpath.dirname("".join(pieces)) or "/"
        pieces.append(value)
    result = posixpath.normpath("".join(pieces))
    if result.startswith("//"):  # POSIX normpath keeps a leading '//'
        result = "/" + result.lstrip("/")
    if ".." in result.split("/"):
        raise ValueError(f"{what}: {template!r} expands to {result!r}, which contains '..'")
    if base is not None:
        base = posixpath.normpath(base)
        prefix = base if base.endswith("/") else base + "/"
        if not result.startswith(prefix) or result == base:
            raise ValueError(
                f"{what}: {template!r} expands to {result!r}, which is not below {base!r}"
                " (an empty server name? put {servername} after a fixed prefix)"
            )
    return result


# ---------------------------------------------------------------------------- TaskInfo


def notebook_port(spec: TaskSpec, placement: Placement) -> int:
    """The port the notebook listens on: the container's in bridge mode, else the first host
    port of the placement."""
    if spec.network_mode == "bridge":
        return spec.container_port
    if not placement.ports:
        raise ValueError(f"task {spec.task_id!r}: the placement has no port for the notebook")
    return placement.ports[0]


def build_task_info(
    spec: TaskSpec, placement: Placement, *, attempt: int = 0, refinement: bool = False
) -> dict:
    """The v1 ``TaskInfo`` JSON to LAUNCH ``spec`` with ``placement``'s resources.

    Whatever depends on the placement is filled in here: the notebook's port in
    JUPYTERHUB_SERVICE_URL, port mappings, Spark's ports and address. ``attempt`` counts
    earlier launches of the same spec (a relaunch gets a fresh task id and env-file URL).
    ``refinement``: the framework has RESERVATION_REFINEMENT (resources carry
    ``reservations`` instead of ``role``). ``ValueError`` for specs Mesos would refuse or
    that cannot work (GPUs with the Docker containerizer, bridge networking without Docker).
    """
    _check_spec(spec, placement)
    task_id = attempt_task_id(spec.task_id, attempt)
    gpus = scalar(placement.resources, "gpus")
    if gpus and spec.image and spec.containerizer == "docker":
        raise ValueError(
            f"task {spec.task_id}: {number(gpus)} GPU(s) with the Docker containerizer: Mesos's"
            " Docker containerizer has no GPU support; use containerizer 'mesos' for GPU images"
        )
    # What travels how (the one rule): the secret part of the spawner's environment is in the
    # env file it prepared; whatever is added below from the placement is never secret.
    env, secret = secrets_in_env_file(spec.env, spec.secret_env, enabled=spec.env_file_delivery)
    env_file_uri = None
    if secret:
        if not spec.env_file_uris:
            raise ValueError(
                f"task {spec.task_id!r}: the secret variable(s) {', '.join(sorted(secret))} would"
                " be in the TaskInfo, which agents show to anyone; they go only by the one-time"
                " env file, and none was prepared"
            )
        env_file_uri = spec.env_file_uris[min(attempt, len(spec.env_file_uris) - 1)]
        env[ENV_FILE_VAR] = ENV_FILE_NAME
    added: dict[str, str] = {}
    if spec.service_url is not None:
        added["JUPYTERHUB_SERVICE_URL"] = spec.service_url.at(notebook_port(spec, placement))
    if not gpus and "NVIDIA_VISIBLE_DEVICES" not in env:
        # On a GPU agent the nvidia container runtime shows a container every GPU unless told
        # otherwise: a CPU-only notebook must see none (Mesos itself sets nothing here).
        added["NVIDIA_VISIBLE_DEVICES"] = "void"
    docker = spec.image is not None and spec.containerizer == "docker"
    if spec.spark is not None:
        spec = _with_spark(spec, task_id, placement, added, secrets_out=bool(secret))
    for name in added:
        if spec.env_file_delivery and is_secret(name, spec.secret_env):
            raise ValueError(
                f"task {spec.task_id!r}: {name} is named like a secret (secret_env) but is set"
                " from the offer, so it cannot go by the env file; remove the pattern matching it"
            )
    env.update(added)
    _check_public(spec, split_secrets(spec.env, spec.secret_env)[1])
    argv = list(spec.argv)
    if env_file_uri and spec.image is None:
        # A plain command task: the fixed wrapper reads and deletes the env file, then execs
        # the notebook, whose argv are only positional arguments of the script.
        argv = ["/bin/sh", "-c", PLAIN_START_SCRIPT, PLAIN_START_NAME, *argv]
    command: dict[str, Any] = {
        "shell": False,
        "value": argv[0],
        # Docker appends value and arguments to the image's entrypoint; the command executor
        # execs value with arguments as the full argv (arguments[0] is the program name).
        "arguments": argv[1:] if docker else argv,
        "environment": {
            "variables": [{"name": k, "value": env[k]} for k in sorted(env)],
        },
    }
    if spec.image is not None and spec.containerizer == "mesos":
        # No value: Mesos (docker/runtime isolator) then runs the image's entrypoint with the
        # arguments appended, as Docker does, so its start script runs before the notebook.
        del command["value"]
        if spec.entrypoint_drops_root:
            _check_drop_target(spec, env)
            # The start script begins as root, maps NB_USER/NB_UID/NB_GID and drops root: the
            # person's name need not exist in the image (command.user must).
            command["user"] = "root"
        elif spec.user:
            command["user"] = spec.user
    elif spec.user:
        # Docker's process runs as the ``user`` parameter; command.user makes the sandbox (and
        # the fetched env file) the person's, so the start script can delete the file.
        command["user"] = spec.user
    uris = [{"value": uri} for uri in spec.uris]
    if env_file_uri:
        uris.append(
            {
                "value": env_file_uri,
                "output_file": ENV_FILE_NAME,
                "extract": False,
                "cache": False,
                "executable": False,
            }
        )
    if uris:
        command["uris"] = uris

    task: dict[str, Any] = {
        "name": spec.name,
        "task_id": id_json(task_id),
        "agent_id": id_json(placement.agent_id),
        "resources": resources_to_json(
            placement.resources, refinement=refinement, allocation_role=placement.allocation_role
        ),
        "command": command,
    }
    container = _container(spec, placement)
    if container is not None:
        task["container"] = container
    if spec.labels:
        task["labels"] = {
            "labels": [{"key": k, "value": spec.labels[k]} for k in sorted(spec.labels)]
        }
    task["kill_policy"] = {"grace_period": duration(spec.kill_grace_seconds)}
    return task


def _check_spec(spec: TaskSpec, placement: Placement) -> None:
    where = f"task {spec.task_id!r}"
    if not spec.task_id or not re.fullmatch(r"[A-Za-z0-9_.\-]+", spec.task_id):
        raise ValueError(f"{where}: task ids may only contain letters, digits, '_', '.', '-'")
    if not spec.argv or not all(isinstance(a, str) for a in spec.argv) or not spec.argv[0]:
        raise ValueError(f"{where}: argv must be a non-empty list of strings, not {spec.argv!r}")
    if spec.containerizer not in CONTAINERIZERS:
        raise ValueError(
            f"{where}: containerizer {spec.containerizer!r}: use one of {', '.join(CONTAINERIZERS)}"
        )
    if spec.network_mode not in NETWORK_MODES:
        raise ValueError(
            f"{where}: network_mode {spec.network_mode!r}: use one of {', '.join(NETWORK_MODES)}"
        )
    if spec.network_mode == "bridge" and (spec.image is None or spec.containerizer != "docker"):
        raise ValueError(
            f"{where}: network_mode 'bridge' needs an image and the docker containerizer"
            " (the Mesos containerizer and plain commands use the host network here)"
        )
    if spec.network_mode == "bridge" and not placement.ports:
        raise ValueError(f"{where}: bridge networking needs a host port in the placement")
    for k, v in spec.env.items():
        if not isinstance(k, str) or not k or "=" in k or "\x00" in k:
            raise ValueError(f"{where}: bad environment variable name {k!r}")
        if not isinstance(v, str) or "\x00" in v:
            raise ValueError(f"{where}: environment variable {k} must be a string without NUL")
    for uri in (*spec.uris, *spec.env_file_uris):
        if not isinstance(uri, str) or not uri:
            raise ValueError(f"{where}: fetcher URIs must be non-empty strings, not {uri!r}")
    for key, value in spec.labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"{where}: label {key!r}: keys and values must be strings")
    if not all(isinstance(p, str) and p for p in spec.secret_env):
        raise ValueError(f"{where}: secret_env must be non-empty names or patterns")
    if not math.isfinite(spec.kill_grace_seconds) or spec.kill_grace_seconds < 0:
        raise ValueError(f"{where}: kill_grace_seconds must be >= 0, not {spec.kill_grace_seconds}")
    if spec.uid is not None:
        _int(spec.uid, "uid")
    if spec.gid is not None:
        _int(spec.gid, "gid")


def _check_drop_target(spec: TaskSpec, env: Mapping[str, str]) -> None:
    """A root entrypoint must have a non-root uid to drop to (docker-stacks refuses NB_UID 0
    unless ALLOW_ROOT=yes)."""
    if spec.uid is None or (spec.uid == 0 and env.get("ALLOW_ROOT") != "yes"):
        raise ValueError(
            f"task {spec.task_id!r}: the image's entrypoint starts as root and must drop to the"
            f" user's uid, but uid is {spec.uid!r}; set a non-root uid (NB_UID 0 also needs"
            " ALLOW_ROOT=yes in the environment)"
        )


def _check_public(spec: TaskSpec, secret: Mapping[str, str]) -> None:
    """No secret value in what a TaskInfo shows everyone: labels, name, command line, Docker
    parameters, volumes (labels are also what orphan detection reads in ``/master/state``)."""
    values = {k: v for k, v in secret.items() if len(v) >= _MIN_SECRET_LEN}
    if not values:
        return
    public = [("name", spec.name)]
    public += [(f"label {k!r}", f"{k}={v}") for k, v in spec.labels.items()]
    public += [(f"argument {i}", a) for i, a in enumerate(spec.argv)]
    public += [(f"docker parameter {k!r}", f"{k}={v}") for k, v in spec.docker_parameters]
    public += [(f"volume {v.get('container_path')!r}", repr(v)) for v in spec.volumes]
    for where, text in public:
        for name, value in values.items():
            if value in text:
                raise ValueError(
                    f"task {spec.task_id!r}: {where} would expose the value of {name}; task"
                    " names, labels, command lines and container settings are public"
                )


def _container(spec: TaskSpec, placement: Placement) -> dict | None:
    if spec.image is None:
        # A plain command task. Host volumes still need a container (type MESOS, no image):
        # that is how Mesos mounts them for a process.
        if not spec.volumes:
            return None
        return {"type": "MESOS", "volumes": _volumes_json(spec.volumes)}
    if spec.containerizer == "mesos":
        container: dict[str, Any] = {
            "type": "MESOS",
            "mesos": {
                "image": {
                    "type": "DOCKER",
                    "docker": {"name": spec.image},
                    "cached": not spec.force_pull_image,
                }
            },
        }
    else:
        docker: dict[str, Any] = {
            "image": spec.image,
            "network": spec.network_mode.upper(),
            "force_pull_image": spec.force_pull_image,
        }
        if spec.network_mode == "bridge":
            mappings = [
                {
                    "host_port": placement.ports[0],
                    "container_port": spec.container_port,
                    "protocol": "tcp",
                }
            ]
            # Spark's driver, block manager and libprocess advertise the host's ports, so they
            # listen on the same numbers inside the container.
            mappings += [
                {"host_port": p, "container_port": p, "protocol": "tcp"}
                for p in placement.ports[1 : 1 + spark_ports_needed(spec.spark)]
            ]
            docker["port_mappings"] = mappings
        parameters = []
        if spec.uid is not None:
            user = str(spec.uid) if spec.gid is None else f"{spec.uid}:{spec.gid}"
            parameters.append({"key": "user", "value": user})
        for key, value in spec.docker_parameters:
            if not isinstance(key, str) or not key or not isinstance(value, str):
                raise ValueError(
                    f"docker parameter {(key, value)!r}: key and value must be strings"
                )
            if key == "user" and spec.uid is not None:
                raise ValueError(
                    f"docker parameter user={value!r} conflicts with uid {spec.uid}; set one"
                )
            parameters.append({"key": key, "value": value})
        if parameters:
            docker["parameters"] = parameters
        container = {"type": "DOCKER", "docker": docker}
    if spec.volumes:
        container["volumes"] = _volumes_json(spec.volumes)
    return container


def _volumes_json(volumes: Sequence[Mapping[str, str]]) -> list[dict]:
    return [
        {
            "container_path": v["container_path"],
            "host_path": v["host_path"],
            "mode": v.get("mode", "RW"),
        }
        for v in volumes
    ]


def _with_spark(
    spec: TaskSpec, task_id: str, placement: Placement, env: dict[str, str], *, secrets_out: bool
) -> TaskSpec:
    """The Spark section of launch ``task_id``: the driver's environment into ``env`` (ports
    and address from the placement; the framework and its executors named for ``task_id``,
    the attempt's own id), and into the spec the label that names the driver's address and,
    for an image, the read-only mount of the agents' Mesos libraries. ``secrets_out``: secret
    variables leave the environment for the one-time env file."""
    settings = spec.spark
    sparkconf.check(settings)
    bridge = spec.network_mode == "bridge"
    host = placement.ip or placement.hostname
    address = sparkconf.driver_address(host, placement.ports)
    if sparkconf.SECRET_ENV in spec.env and not secrets_out:
        raise ValueError(
            f"task {task_id!r}: the Spark secret would be in the TaskInfo; it reaches the"
            " notebook only through the one-time env file (c.MesosSpawner.env_file_delivery)"
        )
    env.update(
        sparkconf.driver_env(
            settings,
            address,
            task_id=task_id,
            uid=spec.uid,
            gid=spec.gid,
            image=spec.image is not None,
            bridge=bridge,
            advertise_ip=placement.ip,
        )
    )
    labels = {**spec.labels, **sparkconf.driver_labels(address)}
    volumes = spec.volumes
    lib = sparkconf.lib_volume(settings) if spec.image is not None else None
    if lib is not None:
        volumes = (*volumes, lib)
    return dataclasses.replace(spec, labels=labels, volumes=volumes)
