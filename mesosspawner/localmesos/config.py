"""The cluster file → ``ClusterConfig``; and the default cluster for this machine.

The file is TOML: ``[master]`` (``port``, optional ``zk``) and ``[[agent]]`` tables
(``hostname``, ``resources``, ``attributes`` in ``mesos-agent --resources/--attributes`` syntax).
An agent does by default what a ``mesos-agent`` with default flags does; what a real agent does
only when configured for it is opted into per agent, with the real agent's flag names and rules:

* ``isolation = "filesystem/linux"`` (``--isolation``): host-path volumes on command tasks (no
  image) are mounted into the task's private mount namespace (relative container paths under the
  sandbox); a default agent refuses them ("Volumes in ContainerInfo is not supported").
* ``image_providers = "docker"`` (``--image_providers``): the Mesos containerizer runs tasks
  with a Docker image (the GPU profile's form); a default agent fails them ("Unsupported container
  image type: DOCKER"). As on a real agent it needs ``isolation`` to include
  ``filesystem/linux`` and ``docker/runtime``.

Both take a comma-separated string, as the flags do, or a list of strings.

Every error is a ``ClusterConfigError`` whose one-line message names the file, the offending text
and why, so the CLI can print it and exit 2 without a traceback.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field

from mesosspawner.mesos.resources import (
    Attribute,
    Resource,
    ResourceError,
    format_ranges,
    parse_attributes,
    parse_resources,
    ranges_of,
)


class ClusterConfigError(ValueError):
    """The cluster file is wrong; the message is one line for the person who wrote it."""


# mesos-agent 1.11's --isolation names (src/slave/containerizer/mesos/containerizer.cpp); only
# filesystem/linux and docker/runtime change what a localmesos agent does.
KNOWN_ISOLATORS = frozenset(
    {
        "posix/cpu",
        "posix/mem",
        "posix/disk",
        "posix/rlimits",
        "filesystem/posix",
        "filesystem/linux",
        "filesystem/shared",
        "filesystem/windows",
        "docker/runtime",
        "docker/volume",
        "appc/runtime",
        "volume/host_path",
        "volume/image",
        "volume/sandbox_path",
        "volume/secret",
        "volume/csi",
        "gpu/nvidia",
        "cgroups/all",
        "cgroups/blkio",
        "cgroups/cpu",
        "cgroups/cpuset",
        "cgroups/devices",
        "cgroups/hugetlb",
        "cgroups/mem",
        "cgroups/net_cls",
        "cgroups/net_prio",
        "cgroups/perf_event",
        "cgroups/pids",
        "disk/du",
        "disk/xfs",
        "environment_secret",
        "linux/capabilities",
        "linux/devices",
        "linux/nnp",
        "linux/seccomp",
        "namespaces/ipc",
        "namespaces/pid",
        "network/cni",
        "network/port_mapping",
        "network/ports",
        "windows/cpu",
        "windows/mem",
    }
)
IMAGE_PROVIDERS = ("docker",)  # real agents also know "appc"; localmesos runs Docker images only


@dataclass(frozen=True)
class Containerization:
    """What an agent's Mesos containerizer does beyond a default agent's (``--isolation``,
    ``--image_providers``); plain data for ``LocalAgent``."""

    isolation: tuple[str, ...] = ()
    image_providers: tuple[str, ...] = ()
    # --docker_config: a Docker client config file whose logins the agent pulls images with.
    docker_config: str | None = None

    @property
    def images(self) -> bool:
        """Tasks with ``container.mesos.image`` (a Docker image) run."""
        return "docker" in self.image_providers

    @property
    def host_volumes(self) -> bool:
        """Host-path volumes on command tasks are mounted (filesystem/linux)."""
        return "filesystem/linux" in self.isolation


def parse_containerization(
    isolation: object = "",
    image_providers: object = "",
    where: str = "agent",
    docker_config: object = None,
) -> Containerization:
    """The opt-ins, checked as ``mesos-agent`` checks its flags; errors name ``where``."""
    iso = _names(isolation, "isolation", where)
    for name in iso:
        if name not in KNOWN_ISOLATORS:
            raise ClusterConfigError(
                f"{where}: isolation {name!r} is not a Mesos isolator (e.g. filesystem/linux,"
                " docker/runtime, posix/cpu)"
            )
    providers = tuple(n.lower() for n in _names(image_providers, "image_providers", where))
    for name in providers:
        if name not in IMAGE_PROVIDERS:
            raise ClusterConfigError(
                f"{where}: image_providers {name!r}: localmesos runs Docker images only"
                ' (image_providers = "docker")'
            )
    if providers and "filesystem/linux" not in iso:
        raise ClusterConfigError(
            f"{where}: image_providers = {','.join(providers)!r} needs isolation to include"
            " 'filesystem/linux' (mesos-agent: \"The 'filesystem/linux' isolator must be enabled"
            ' for container image support")'
        )
    if "docker" in providers and "docker/runtime" not in iso:
        raise ClusterConfigError(
            f"{where}: image_providers = 'docker' needs isolation to include 'docker/runtime'"
            " (mesos-agent: \"Docker runtime isolator has to be specified if 'DOCKER' is included"
            " in 'image_providers'\")"
        )
    if docker_config is not None and (
        not isinstance(docker_config, str) or not docker_config.startswith("/")
    ):
        raise ClusterConfigError(
            f"{where}: docker_config = {docker_config!r}: must be an absolute path to a Docker"
            " config.json (as mesos-agent --docker_config)"
        )
    return Containerization(iso, providers, docker_config or None)


def _names(value: object, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = value
    else:
        raise ClusterConfigError(
            f"{where}: {key} = {value!r}: must be a comma-separated string or a list of strings"
        )
    return tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))


@dataclass
class AgentConfig:
    hostname: str
    resources: list[Resource]
    attributes: list[Attribute] = field(default_factory=list)
    resources_text: str = ""
    attributes_text: str = ""
    containerization: Containerization = field(default_factory=Containerization)


@dataclass
class ClusterConfig:
    port: int = 5050
    zk: str | None = None
    agents: list[AgentConfig] = field(default_factory=list)
    source: str = "<default cluster>"


def parse_agent(
    hostname: str,
    resources: str,
    attributes: str = "",
    source: str = "<command line>",
    *,
    isolation: object = "",
    image_providers: object = "",
    docker_config: object = None,
) -> AgentConfig:
    """One agent from ``--resources`` / ``--attributes`` (and ``--isolation`` /
    ``--image_providers``) strings, errors naming ``source``."""
    containerization = parse_containerization(
        isolation, image_providers, f"{source}: agent {hostname!r}", docker_config
    )
    try:
        res = parse_resources(resources)
    except ResourceError as e:
        raise ClusterConfigError(f"{source}: agent {hostname!r}: {e}") from None
    try:
        attrs = parse_attributes(attributes)
    except ResourceError as e:
        raise ClusterConfigError(f"{source}: agent {hostname!r}: {e}") from None
    return AgentConfig(hostname, res, attrs, resources, attributes, containerization)


def load(path: str) -> ClusterConfig:
    """Read and validate a cluster file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ClusterConfigError(f"{path}: cannot read cluster file: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ClusterConfigError(f"{path}: not valid TOML: {e}") from None
    return from_dict(data, path)


AGENT_KEYS = (
    "hostname",
    "resources",
    "attributes",
    "isolation",
    "image_providers",
    "docker_config",
)


def from_dict(data: dict, source: str) -> ClusterConfig:
    unknown = set(data) - {"master", "agent"}
    if unknown:
        raise ClusterConfigError(
            f"{source}: unknown table(s) {sorted(unknown)}; expected [master] and [[agent]]"
        )
    master = data.get("master", {})
    if not isinstance(master, dict):
        raise ClusterConfigError(f"{source}: 'master' must be a table ([master])")
    port = master.get("port", 5050)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ClusterConfigError(f"{source}: [master] port = {port!r}: must be an integer 0-65535")
    zk = master.get("zk")
    if zk is not None and (not isinstance(zk, str) or not zk.startswith("zk://")):
        raise ClusterConfigError(
            f"{source}: [master] zk = {zk!r}: must look like zk://host:port/path"
        )
    agents_data = data.get("agent", [])
    if not isinstance(agents_data, list):
        raise ClusterConfigError(f"{source}: 'agent' must be an array of tables ([[agent]])")
    agents: list[AgentConfig] = []
    for i, a in enumerate(agents_data):
        where = f"{source}: [[agent]] #{i + 1}"
        hostname = a.get("hostname")
        if not isinstance(hostname, str) or not hostname:
            raise ClusterConfigError(
                f"{where}: hostname = {hostname!r}: must be a non-empty string"
            )
        for key in ("resources", "attributes"):
            if key in a and not isinstance(a[key], str):
                raise ClusterConfigError(f"{where}: {key} = {a[key]!r}: must be a string")
        extra = set(a) - set(AGENT_KEYS)
        if extra:
            raise ClusterConfigError(
                f"{where}: unknown key(s) {sorted(extra)}; expected {', '.join(AGENT_KEYS)}"
            )
        agents.append(
            parse_agent(
                hostname,
                a.get("resources", ""),
                a.get("attributes", ""),
                source,
                isolation=a.get("isolation", ""),
                image_providers=a.get("image_providers", ""),
                docker_config=a.get("docker_config"),
            )
        )
    check_agents(agents, source)
    return ClusterConfig(port=port, zk=zk, agents=agents, source=source)


def check_agents(agents: list[AgentConfig], source: str) -> None:
    """Hostnames unique; port ranges disjoint (all agents share this machine's network)."""
    seen: dict[str, None] = {}
    for a in agents:
        if a.hostname in seen:
            raise ClusterConfigError(f"{source}: hostname {a.hostname!r} is used by two agents")
        seen[a.hostname] = None
    for i, a in enumerate(agents):
        mine = ranges_of(a.resources, "ports")
        for b in agents[i + 1 :]:
            theirs = ranges_of(b.resources, "ports")
            overlap = [
                (max(x0, y0), min(x1, y1))
                for x0, x1 in mine
                for y0, y1 in theirs
                if max(x0, y0) <= min(x1, y1)
            ]
            if overlap:
                raise ClusterConfigError(
                    f"{source}: agents {a.hostname!r} and {b.hostname!r} both claim ports "
                    f"{format_ranges(overlap)}; agents share this machine: give them disjoint "
                    "port ranges"
                )


GPU_AGENT_ISOLATION = "filesystem/linux,docker/runtime"


def default_cluster() -> ClusterConfig:
    """A plain agent, a GPU agent (2 GPUs, configured for images) and a spark-reserved agent,
    sized to this machine."""
    cpus = max(os.cpu_count() or 2, 2)
    try:
        mem_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        mem_mb = 4096
    per_agent_mem = max(int(mem_mb // 3), 1024)
    half_cpus = max(cpus // 2, 1)
    agents = [
        parse_agent(
            "agent-1",
            f"cpus:{cpus};mem:{per_agent_mem};disk:50000;ports:[31000-31999]",
            "rack:r1",
            "<default cluster>",
        ),
        # A lab's GPU agents run the GPU images (Mesos containerizer): configured for it.
        parse_agent(
            "gpu-1",
            f"cpus:{cpus};mem:{per_agent_mem};disk:50000;gpus:2;ports:[32000-32999]",
            "rack:r1;gpu_model:localgpu",
            "<default cluster>",
            isolation=GPU_AGENT_ISOLATION,
            image_providers="docker",
        ),
        parse_agent(
            "spark-1",
            f"cpus(spark):{cpus};mem(spark):{per_agent_mem - 1024};cpus:{half_cpus};mem:1024;"
            "disk:50000;ports:[33000-33999]",
            "rack:r2;spark_cluster:local",
            "<default cluster>",
        ),
    ]
    return ClusterConfig(agents=agents)
