"""Spark on Mesos from a notebook: the settings its SparkSession needs, and which Spark
frameworks a notebook started. Pure.

A Spark profile's notebook holds the Spark driver (PySpark's JVM). Spark 3.5 registers with Mesos
as a framework of its own through libmesos, and its executors are Mesos tasks, here in the
executor image on the Docker containerizer. What makes ``SparkSession.builder.getOrCreate()``
work with no arguments, each rule learned on real Mesos 1.11 (``real-mesos/README.md``):

- Agents reach the driver: ``spark.driver.host`` is the agent's address, and the driver's ports
  (RPC, block manager, libprocess, UI) come from the notebook's own offer, with
  ``spark.port.maxRetries=0`` so Spark never drifts to a port that is not the notebook's.
  ``spark.driver.blockManager.port``, never ``spark.blockManager.port``: that one applies to
  executors too, and Spark then declines every offer without that exact port.
- ``LIBPROCESS_IP``/``LIBPROCESS_PORT`` reach the driver's JVM only: the task carries them as
  ``MESOSSPAWNER_DRIVER_LIBPROCESS_*`` and the image's ``spark-env.sh`` maps them. In the task's
  environment Mesos's own executor would inherit ``LIBPROCESS_PORT`` and bind it first.
- Executors in Docker run as the notebook's uid:gid (Docker ``user`` parameter; Mesos's Docker
  containerizer passes no user), named by ``SPARK_USER``, and read no shuffle file from another
  container's disk (``spark.shuffle.readHostLocalDisk=false``).
- ``spark.mesos.constraints`` keeps executors on the Spark machines (real Mesos also offers plain
  agents' unreserved resources to role ``spark``); ``spark.cores.max`` bounds one notebook.
- A notebook's Spark framework is recognisable: its name (``spark.app.name``) is the notebook's
  task id, its executors carry the label ``mesosspawner.notebook=<task id>``, and its scheduler's
  libprocess address is the one reserved in the notebook's offer (the notebook task's label
  ``mesosspawner.spark-driver``). Stopping a notebook tears its frameworks down; one whose
  notebook is gone is an orphan (``spark_cleanup``).
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .mesos.states import LIVE_STATES
from .mesos.wire import number

# The driver's host ports after the notebook's own: RPC, block manager, libprocess, UI.
DRIVER_PORTS = 4
MESOS_LIB_MOUNT = "/opt/mesos/lib"  # where an image finds the agents' Mesos libraries
NOTEBOOK_LABEL = "mesosspawner.notebook"  # on each executor task: the notebook's task id
DRIVER_LABEL = "mesosspawner.spark-driver"  # on the notebook task: the driver's libprocess
DRIVER_ENV_PREFIX = "MESOSSPAWNER_DRIVER_"  # + LIBPROCESS_IP etc.: for the Spark JVM only
SECRET_ENV = "SPARK_MESOS_SECRET"  # Spark reads its Mesos secret from here
# A hub's task-id prefix, or its prefixes under both naming schemes (``naming.task_id_prefixes``).
Prefix = str | tuple[str, ...]

_CONF_KEY = re.compile(r"spark\.[A-Za-z0-9_.\-]+")
# Settings the offer decides; a configured value would be overridden, so it is refused instead.
_PLACED = (
    "spark.driver.host",
    "spark.driver.port",
    "spark.driver.blockManager.port",
    "spark.ui.port",
    "spark.driver.bindAddress",
    "spark.port.maxRetries",
)
_REFUSED = {
    "spark.blockManager.port": (
        "it applies to executors too, and Spark on Mesos then declines every offer without that"
        " exact port (nothing launches); the spawner sets spark.driver.blockManager.port from"
        " the notebook's offer"
    ),
    "spark.mesos.secret": (
        "it would be visible in the notebook's task; set c.MesosSpawner.spark_secret instead"
    ),
}


@dataclass(frozen=True)
class SparkSettings:
    """How a Spark notebook's driver reaches its cluster (from the spawner's traits)."""

    master: str  # mesos://host:5050 or mesos://zk://...
    executor_image: str | None = None  # spark.mesos.executor.docker.image (pin by digest)
    role: str | None = None  # spark.mesos.role
    conf: Mapping[str, str] = field(default_factory=dict)  # extra spark.* settings
    cores_max: float | None = None  # spark.cores.max: one notebook's share of the cluster
    executor_constraints: str | None = None  # spark.mesos.constraints, e.g. "spark_cluster:prod"
    # The agents' Mesos JNI library (MESOS_NATIVE_JAVA_LIBRARY): libmesos-java.so as
    # scripts/install-mesos.sh installs it, or libmesos.so of a Mesos built with Java.
    mesos_native_library: str | None = None
    principal: str | None = None  # spark.mesos.principal (its secret travels in SECRET_ENV)
    user: str | None = None  # the notebook's system user: SPARK_USER, so the executors' user


@dataclass(frozen=True)
class DriverAddress:
    """Where the driver listens: the agent's address and the ports taken from the offer."""

    host: str
    driver_port: int
    block_manager_port: int
    libprocess_port: int
    ui_port: int

    @property
    def libprocess(self) -> str:
        return f"{self.host}:{self.libprocess_port}"


def check(settings: SparkSettings) -> None:
    """``ValueError`` for settings that cannot work, naming the setting and the fix."""
    if not settings.master.startswith(("mesos://", "local")):
        raise ValueError(
            f"spark_master {settings.master!r}: Spark reaches Mesos through mesos://HOST:PORT or"
            " mesos://zk://HOST:PORT/PATH (or local[N] for Spark without a cluster)"
        )
    for key, value in settings.conf.items():
        if not isinstance(key, str) or not _CONF_KEY.fullmatch(key):
            raise ValueError(f"spark_conf key {key!r}: must look like spark.some.setting")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError(f"spark_conf {key}: value {value!r} must be a string or number")
        if key in _REFUSED:
            raise ValueError(f"spark_conf {key}: not allowed, {_REFUSED[key]}")
        if key in _PLACED:
            raise ValueError(
                f"spark_conf {key}: the spawner sets it from the notebook's Mesos offer"
            )
    if settings.cores_max is not None and settings.cores_max <= 0:
        raise ValueError(
            f"spark_cores_max must be > 0 (or None: no limit), not {settings.cores_max}"
        )
    if settings.executor_constraints and any(c in settings.executor_constraints for c in "\n\0"):
        raise ValueError("spark_executor_constraints must be one line")
    library = settings.mesos_native_library
    if library and (not posixpath.isabs(library) or posixpath.basename(library) in ("", "..")):
        raise ValueError(
            f"spark_mesos_native_library {library!r}: the absolute path of Mesos's JNI library on"
            " the agents, e.g. /opt/mesos/lib/libmesos-java.so"
        )


def is_local(settings: SparkSettings) -> bool:
    """Spark in local mode (``local``, ``local[N]``): the driver runs every task itself."""
    return settings.master.startswith("local")


def driver_address(host: str, ports: Sequence[int]) -> DriverAddress:
    """The driver's address from the notebook's placement ports (the first is the notebook's)."""
    if len(ports) < 1 + DRIVER_PORTS:
        raise ValueError(
            f"a Spark notebook needs {1 + DRIVER_PORTS} ports (notebook, driver, block manager,"
            f" libprocess, UI) but the placement has {len(ports)}: {tuple(ports)}"
        )
    driver, block_manager, libprocess, ui = ports[1 : 1 + DRIVER_PORTS]
    return DriverAddress(host, driver, block_manager, libprocess, ui)


def driver_conf(
    settings: SparkSettings,
    address: DriverAddress,
    *,
    task_id: str,
    uid: int | None,
    gid: int | None,
    bridge: bool = False,
) -> dict[str, str]:
    """Every ``spark.*`` setting of the notebook's driver: configured ones, then the computed
    ones (which win: the offer decides host and ports)."""
    conf = {"spark.app.name": task_id}
    if settings.role:
        conf["spark.mesos.role"] = settings.role
    if settings.cores_max is not None:
        conf["spark.cores.max"] = number(settings.cores_max)
    if settings.executor_constraints:
        conf["spark.mesos.constraints"] = settings.executor_constraints
    if settings.principal:
        conf["spark.mesos.principal"] = settings.principal
    if settings.executor_image:
        conf["spark.mesos.executor.docker.image"] = settings.executor_image
        # Two executors of one app on one agent live in different containers: reading each
        # other's shuffle files from "local" disk fails (FetchFailed, a lost executor).
        conf["spark.shuffle.readHostLocalDisk"] = "false"
        if uid is not None:
            # Mesos's Docker containerizer passes no user: the executors would run as root.
            user_param = str(uid) if gid is None else f"{uid}:{gid}"
            conf["spark.mesos.executor.docker.parameters"] = f"user={user_param}"
    if settings.user:
        conf["spark.executorEnv.SPARK_USER"] = settings.user
    conf["spark.mesos.task.labels"] = f"{NOTEBOOK_LABEL}:{task_id}"
    for key, value in settings.conf.items():
        conf[key] = str(value)
    conf.update(
        {
            "spark.driver.host": address.host,
            "spark.driver.port": str(address.driver_port),
            "spark.driver.blockManager.port": str(address.block_manager_port),
            "spark.ui.port": str(address.ui_port),
            "spark.port.maxRetries": "0",
        }
    )
    if bridge:
        conf["spark.driver.bindAddress"] = "0.0.0.0"
    return conf


def submit_args(master: str, conf: Mapping[str, str]) -> str:
    """``--master M --conf k=v ...``, shell-quoted as Spark's launchers split it."""
    args = ["--master", master]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    return " ".join(shlex.quote(a) for a in args)


def driver_env(
    settings: SparkSettings,
    address: DriverAddress,
    *,
    task_id: str,
    uid: int | None,
    gid: int | None,
    image: bool,
    bridge: bool = False,
    advertise_ip: str | None = None,
) -> dict[str, str]:
    """The notebook task's Spark environment: the master, the driver's settings as PySpark's
    launcher reads them, the driver-only libprocess address and the Mesos Java library."""
    conf = driver_conf(settings, address, task_id=task_id, uid=uid, gid=gid, bridge=bridge)
    opts = submit_args(settings.master, conf)
    env = {
        "SPARK_MASTER": settings.master,
        "MASTER": settings.master,  # Spark reads MASTER, not SPARK_MASTER
        "SPARK_OPTS": opts,
        # PySpark's launcher (any SparkSession/SparkContext created in a kernel) reads these.
        "PYSPARK_SUBMIT_ARGS": opts + " pyspark-shell",
        DRIVER_ENV_PREFIX + "LIBPROCESS_PORT": str(address.libprocess_port),
    }
    if settings.user:
        env["SPARK_USER"] = settings.user  # the framework's user: Mesos runs executors as it
    if bridge:
        env[DRIVER_ENV_PREFIX + "LIBPROCESS_IP"] = "0.0.0.0"
        if advertise_ip:
            env[DRIVER_ENV_PREFIX + "LIBPROCESS_ADVERTISE_IP"] = advertise_ip
        env[DRIVER_ENV_PREFIX + "LIBPROCESS_ADVERTISE_PORT"] = str(address.libprocess_port)
    else:
        env[DRIVER_ENV_PREFIX + "LIBPROCESS_IP"] = address.host
    library = settings.mesos_native_library
    if library:
        # An image sees the library's directory (libmesos beside it) at MESOS_LIB_MOUNT.
        name = posixpath.basename(library)
        env["MESOS_NATIVE_JAVA_LIBRARY"] = f"{MESOS_LIB_MOUNT}/{name}" if image else library
    return env


def lib_volume(settings: SparkSettings) -> dict[str, str] | None:
    """The read-only mount of the agents' Mesos library directory into a notebook image (the
    JNI library finds libmesos beside it), if configured."""
    if not settings.mesos_native_library:
        return None
    directory = posixpath.dirname(settings.mesos_native_library)
    return {"host_path": directory, "container_path": MESOS_LIB_MOUNT, "mode": "RO"}


def driver_labels(address: DriverAddress) -> dict[str, str]:
    """Labels of the notebook task that let its Spark framework be found by address."""
    return {DRIVER_LABEL: address.libprocess}


# ---------------------------------------------------------------------------- frameworks


def _labels(task: Mapping) -> dict[str, str]:
    raw = task.get("labels") or []
    if isinstance(raw, Mapping):  # v1 JSON shape {"labels": [...]}
        raw = raw.get("labels") or []
    return {lab.get("key"): lab.get("value", "") for lab in raw if isinstance(lab, Mapping)}


def _tasks(framework: Mapping) -> list[Mapping]:
    return [
        *framework.get("tasks", []),
        *framework.get("unreachable_tasks", []),
        *framework.get("completed_tasks", []),
    ]


def _scheduler_address(framework: Mapping) -> str | None:
    """``host:port`` of a v0 (libmesos) framework's scheduler: ``pid`` is ``name@host:port``."""
    pid = framework.get("pid") or ""
    return pid.rpartition("@")[2] or None


def notebook_tasks(frameworks: Iterable[Mapping], prefix: Prefix) -> dict[str, Mapping]:
    """Notebook tasks whose ids start with ``prefix`` (a hub's), by id; a live copy wins."""
    out: dict[str, Mapping] = {}
    for fw in frameworks:
        for task in _tasks(fw):
            task_id = task.get("id") or ""
            if not task_id.startswith(prefix):
                continue
            if task_id not in out or task.get("state") in LIVE_STATES:
                out[task_id] = task
    return out


def owner(framework: Mapping, prefix: Prefix, drivers: Mapping[str, str]) -> str | None:
    """The notebook task id (starting with ``prefix``) that started a Spark framework: its name,
    an executor's label, or its scheduler's libprocess address in ``drivers`` (address -> id)."""
    name = framework.get("name") or ""
    if name.startswith(prefix):
        return name
    for task in _tasks(framework):
        notebook = _labels(task).get(NOTEBOOK_LABEL, "")
        if notebook.startswith(prefix):
            return notebook
    address = _scheduler_address(framework)
    return drivers.get(address) if address else None


def driver_addresses(notebooks: Mapping[str, Mapping]) -> dict[str, str]:
    """Driver libprocess address -> notebook task id, from the notebook tasks' labels; a live
    notebook wins an address a finished one also had (ports are reused)."""
    out: dict[str, str] = {}
    by_liveness = sorted(notebooks.items(), key=lambda kv: kv[1].get("state") in LIVE_STATES)
    for task_id, task in by_liveness:
        address = _labels(task).get(DRIVER_LABEL)
        if address:
            out[address] = task_id
    return out


def frameworks_of(
    frameworks: Iterable[Mapping], task_id: str, driver: str | None = None
) -> list[str]:
    """Ids of the registered Spark frameworks started by the notebook ``task_id`` (``driver``:
    its driver's libprocess address, for a framework renamed by the notebook's code)."""
    drivers = {driver: task_id} if driver else {}
    return [
        fw["id"] for fw in frameworks if fw.get("id") and owner(fw, task_id, drivers) == task_id
    ]


def orphans(frameworks: Sequence[Mapping], prefix: Prefix) -> list[tuple[str, str, bool]]:
    """(framework id, notebook task id, finished) of the Spark frameworks whose notebook (a
    task id starting with ``prefix``) is no longer running: ``finished`` when the master lists
    the notebook task as ended, False when it does not list it at all. A notebook the master
    sees as unreachable still counts as running: a partition may heal, and its driver with it."""
    notebooks = notebook_tasks(frameworks, prefix)
    drivers = driver_addresses(notebooks)
    hubs = _ids_of(notebooks, frameworks)
    out = []
    for fw in frameworks:
        if not fw.get("id") or fw["id"] in hubs:
            continue
        task_id = owner(fw, prefix, drivers)
        if task_id is None:
            continue
        task = notebooks.get(task_id)
        state = task.get("state") if task is not None else None
        if state in LIVE_STATES or state in ("TASK_UNREACHABLE", "TASK_KILLING"):
            continue
        out.append((fw["id"], task_id, task is not None))
    return out


def _ids_of(notebooks: Mapping[str, Mapping], frameworks: Sequence[Mapping]) -> set[str]:
    """Frameworks that run notebooks (the hubs' own): never Spark frameworks."""
    return {
        fw["id"]
        for fw in frameworks
        if fw.get("id") and any(t.get("id") in notebooks for t in _tasks(fw))
    }


# ---------------------------------------------------------------------------- capacity


@dataclass(frozen=True)
class RoleCapacity:
    """Resources reserved for a role across the agents, and how much of them is free."""

    role: str
    free_cpus: float
    total_cpus: float
    free_mem: float  # MiB (Mesos's "MB")
    total_mem: float

    def describe(self) -> str:
        """What the Spark jobs of a notebook can get: "5 of 8 CPUs and 6 of 8 GiB free for
        Spark executors" (the options form puts it in the profile's one sentence)."""
        return (
            f"{number(self.free_cpus)} of {number(self.total_cpus)} CPUs and"
            f" {_gib(self.free_mem)} of {_gib(self.total_mem)} GiB free for Spark executors"
        )


def _gib(mib: float) -> str:
    return number(round(mib / 1024, 1))


def role_capacity(agents: Iterable, role: str) -> RoleCapacity | None:
    """What is reserved for ``role`` (``placement.AgentCapacity``'s totals) and free (offered
    to the hub, so not used by executors or notebooks); None when nothing is reserved for it."""
    totals = {"cpus": 0.0, "mem": 0.0}
    free = {"cpus": 0.0, "mem": 0.0}
    for agent in agents:
        for where, resources in ((totals, agent.total), (free, agent.free)):
            for r in resources:
                if r.role == role and r.name in where and r.scalar is not None:
                    where[r.name] += r.scalar
    if not totals["cpus"] and not totals["mem"]:
        return None
    return RoleCapacity(role, free["cpus"], totals["cpus"], free["mem"], totals["mem"])


def progress_note(settings: SparkSettings, agents: Iterable, role: str | None) -> str | None:
    """What a Spark spawn's progress tells the person: where its jobs run, and what the Spark
    role has free for their executors (None when nothing is reserved for it)."""
    if is_local(settings):
        return (
            f"Spark runs in local mode inside this notebook (SPARK_MASTER={settings.master}):"
            " its jobs use the notebook's own CPUs, no executor runs on the cluster"
        )
    capacity = role_capacity(agents, role or settings.role or "")
    if capacity is None:
        return None
    limit = settings.cores_max
    share = f"; this notebook's executors may hold {number(limit)} CPUs" if limit else ""
    return f"Spark role {capacity.role}: {capacity.describe()}{share}"
