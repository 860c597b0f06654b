"""The traits that keep one person's notebook from another's secrets and from root: who a notebook
may run as, which variables are secret and how they reach the task, and the Docker containers'
privileges.

A part of ``MesosSpawner`` (its base class): set them as ``c.MesosSpawner.<name>``. The rules
they feed are pure: ``identity.resolve`` and ``taskinfo.secrets_in_env_file``.
"""

from __future__ import annotations

from traitlets import Bool, Int, List, Tuple, Unicode
from traitlets.config import LoggingConfigurable

from .identity import DEFAULT_MIN_UID
from .taskinfo import DEFAULT_SECRET_ENV

# `docker run --security-opt=no-new-privileges --cap-drop=ALL`: no setuid binary, file capability
# or sudo in an image lifts the notebook above its uid, and it holds no capability at all.
DEFAULT_DOCKER_SECURITY = (("security-opt", "no-new-privileges"), ("cap-drop", "ALL"))


class SecurityTraits(LoggingConfigurable):
    """Identity, secrets and container privileges of notebooks."""

    allow_root = Bool(
        False, help="Allow notebooks to run as uid 0. Off: such a spawn is refused."
    ).tag(config=True)

    min_uid = Int(
        DEFAULT_MIN_UID,
        help="""Lowest uid a notebook may run as (the system user's, and `uid` when set). Below
        it are system accounts such as `daemon` (uid 1) whose files a notebook must not own.
        uid 0 is governed by `allow_root`.""",
    ).tag(config=True)

    secret_env = List(
        Unicode(),
        default_value=list(DEFAULT_SECRET_ENV),
        help="""Names of secret environment variables, or shell-style patterns (`*TOKEN*`),
        matched ignoring case. Secret variables never travel in the Mesos TaskInfo, which agents
        show to anyone who can read their `/state` or run `ps`: they reach the task only in its
        one-time env file. The default covers the API token and names like *TOKEN*, *SECRET*,
        *PASSWORD*, *_PASS, *_KEY, *_PAT, DATABASE_URL; extend it with
        `c.MesosSpawner.secret_env.append("MY_VAR")`.""",
    ).tag(config=True)

    environment_is_secret = Bool(
        False,
        help="""Treat every variable of `c.Spawner.environment` as secret (in the one-time env
        file, never in the TaskInfo), whatever its name.""",
    ).tag(config=True)

    env_file_delivery = Bool(
        True,
        help="""Pass secret variables (see `secret_env`) to every kind of task in a one-time env
        file that the Mesos fetcher downloads from the hub into the task's sandbox, where the
        start wrapper reads and deletes it before the notebook starts (images: their start script
        must do it, as docker/base-notebook's does). Off: secrets are in the TaskInfo, readable
        by anyone who can read an agent's state or process list. The agents must reach
        `env_file_host:env_file_port`.""",
    ).tag(config=True)
    env_file_ip = Unicode(
        "", help="IP the one-time env-file server binds to (default: the hub's own bind IP)."
    ).tag(config=True)
    env_file_port = Int(0, help="Port of the one-time env-file server (0: any free port).").tag(
        config=True
    )
    env_file_host = Unicode(
        "",
        help="""Host name or IP the Mesos agents use to reach the env-file server (default: the
        host of the hub API URL that notebooks use).""",
    ).tag(config=True)
    env_file_ssl_cert = Unicode(
        "",
        help="""Certificate of the env-file server (HTTPS). Default: the hub's internal certificate
        when `c.JupyterHub.internal_ssl` is on, else plain HTTP. The agents' fetcher verifies it:
        they must trust its CA (with internal_ssl, the hub's `hub-ca`), and its names must include
        `env_file_host` (`c.JupyterHub.trusted_alt_names`).""",
    ).tag(config=True)
    env_file_ssl_key = Unicode("", help="Private key of `env_file_ssl_cert`.").tag(config=True)

    docker_security_parameters = List(
        Tuple(Unicode(), Unicode()),
        default_value=list(DEFAULT_DOCKER_SECURITY),
        help="""`docker run` parameters every Docker-containerizer notebook gets, as
        `[key, value]` pairs: by default `security-opt=no-new-privileges` and `cap-drop=ALL`.
        `docker_parameters` come after them. Set `[]` to run containers with Docker's default
        privileges.""",
    ).tag(config=True)
