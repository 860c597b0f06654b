"""The traits that say what a notebook's task gets: its image and containerizer, resources
beyond JupyterHub's own ``cpu_limit``/``mem_limit``, placement, volumes and who it runs as.

A part of ``MesosSpawner`` (its base class): set them as ``c.MesosSpawner.<name>``; a profile's
``mesosspawner_override`` may set them per profile. ``taskinfo.TaskSpec`` carries them to the
pure TaskInfo builder.
"""

from __future__ import annotations

from traitlets import Bool, Callable, CaselessStrEnum, Dict, Float, Int, List, Unicode, Union
from traitlets.config import LoggingConfigurable

from . import taskinfo


class TaskTraits(LoggingConfigurable):
    """What each notebook's Mesos task is made of."""

    image = Unicode(
        None,
        allow_none=True,
        help="""Docker image of the notebook (pin with `name@sha256:...`). None runs the notebook
        command directly on the agent (a plain command task).""",
    ).tag(config=True)

    containerizer = CaselessStrEnum(
        list(taskinfo.CONTAINERIZERS),
        "docker",
        help="""`docker` (Mesos's Docker containerizer) or `mesos` (the Mesos containerizer with a
        Docker image). GPU notebooks always use `mesos`: the Docker containerizer has no GPUs.""",
    ).tag(config=True)

    network_mode = CaselessStrEnum(
        list(taskinfo.NETWORK_MODES), "host", help="Docker network: `host` or `bridge`."
    ).tag(config=True)

    container_port = Int(
        8888, help="Port the notebook listens on inside the container in `bridge` mode."
    ).tag(config=True)

    gpus = Int(0, help="Whole GPUs each notebook gets.").tag(config=True)
    max_gpus_per_user = Int(
        0,
        help="""Most GPUs one person's running servers may hold together (named servers
        included); a spawn that would go over is refused, saying why. 0: no limit.""",
    ).tag(config=True)
    disk_limit = Float(0.0, help="Disk (MiB; Mesos calls it MB) each notebook reserves.").tag(
        config=True
    )

    role = Unicode(
        "*", help="Role a notebook's resources come from (`*` = unreserved resources)."
    ).tag(config=True)

    constraints = List(
        List(),
        help="""Marathon-style placement constraints, e.g.
        `[["rack", "LIKE", "r[12]"], ["hostname", "UNIQUE"]]`.""",
    ).tag(config=True)

    volumes = List(
        Dict(),
        help="""Host paths to mount: `{host_path, container_path, mode}` where `{username}`,
        `{uid}`, `{gid}` and `{servername}` are expanded (escaped; the result must stay inside
        the path's fixed prefix).""",
    ).tag(config=True)

    uid = Union(
        [Int(), Callable()],
        default_value=None,
        allow_none=True,
        help="""UID the notebook runs as (int, or callable(spawner) -> int). Default: the uid of
        the system user `system_user` on the hub host.""",
    ).tag(config=True)

    gid = Union(
        [Int(), Callable()],
        default_value=None,
        allow_none=True,
        help="GID the notebook runs as (int or callable). Default: the primary group of `uid`.",
    ).tag(config=True)

    system_user = Union(
        [Unicode(), Callable()],
        default_value=None,
        allow_none=True,
        help="""System user name for `command.user` (plain command tasks and the Mesos
        containerizer); must exist on the agents. Default: the JupyterHub user name.""",
    ).tag(config=True)

    force_pull_image = Bool(False, help="Pull the image on every launch.").tag(config=True)
    image_starts_as_root = Bool(
        True,
        help="""Mesos containerizer with an image (GPU notebooks): start the image's entrypoint
        as root, so its start script (docker-stacks: NB_USER, NB_UID, NB_GID) creates the
        person's user and drops root before the notebook starts. Off: the task runs as
        `system_user`, which must then exist in the image. (The Docker containerizer always
        starts the container as uid:gid.)""",
    ).tag(config=True)
    docker_parameters = Dict(
        help="Extra `docker run` parameters for the Docker containerizer (key -> value)."
    ).tag(config=True)
    kill_grace_seconds = Float(
        30.0, help="Seconds between SIGTERM and SIGKILL when a notebook is stopped."
    ).tag(config=True)

    use_agent_hostname = Bool(
        False,
        help="""Connect to the notebook by the agent's hostname instead of the offer's
        `url.address.ip` (agent hostnames need not resolve from the hub).""",
    ).tag(config=True)
