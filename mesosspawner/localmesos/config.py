"""The cluster file → ``ClusterConfig``; and the default cluster for this machine.

The file is TOML: ``[master]`` (``port``, optional ``zk``) and ``[[agent]]`` tables
(``hostname``, ``resources``, ``attributes`` in ``mesos-agent --resources/--attributes`` syntax).

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


@dataclass
class AgentConfig:
    hostname: str
    resources: list[Resource]
    attributes: list[Attribute] = field(default_factory=list)
    resources_text: str = ""
    attributes_text: str = ""


@dataclass
class ClusterConfig:
    port: int = 5050
    zk: str | None = None
    agents: list[AgentConfig] = field(default_factory=list)
    source: str = "<default cluster>"


def parse_agent(
    hostname: str, resources: str, attributes: str = "", source: str = "<command line>"
) -> AgentConfig:
    """One agent from ``--resources`` / ``--attributes`` strings, errors naming ``source``."""
    try:
        res = parse_resources(resources)
    except ResourceError as e:
        raise ClusterConfigError(f"{source}: agent {hostname!r}: {e}") from None
    try:
        attrs = parse_attributes(attributes)
    except ResourceError as e:
        raise ClusterConfigError(f"{source}: agent {hostname!r}: {e}") from None
    return AgentConfig(hostname, res, attrs, resources, attributes)


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
        extra = set(a) - {"hostname", "resources", "attributes"}
        if extra:
            raise ClusterConfigError(
                f"{where}: unknown key(s) {sorted(extra)}; expected hostname, resources, attributes"
            )
        agents.append(
            parse_agent(hostname, a.get("resources", ""), a.get("attributes", ""), source)
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


def default_cluster() -> ClusterConfig:
    """A plain agent, a GPU agent (2 GPUs) and a spark-reserved agent, sized to this machine."""
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
        parse_agent(
            "gpu-1",
            f"cpus:{cpus};mem:{per_agent_mem};disk:50000;gpus:2;ports:[32000-32999]",
            "rack:r1;gpu_model:localgpu",
            "<default cluster>",
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
