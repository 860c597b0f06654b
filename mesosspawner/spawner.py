"""MesosSpawner: one notebook server = one Mesos task, launched through the hub's shared framework.

Thin on purpose: the task's traits and the JupyterHub contract live here; the traits of the
cluster connection and the shared framework in `traits`; offer matching (`placement`),
TaskInfo building (`taskinfo`), profile validation (`profiles`) and the Mesos conversation
(`framework`) live in their own modules.
"""

from __future__ import annotations

import asyncio
import html
import os
import pwd
import secrets
import time
from urllib.parse import urlparse

from jupyterhub.spawner import Spawner

try:
    from jupyterhub.spawner import SpawnException
except ImportError:  # JupyterHub < 6
    SpawnException = None
from jupyterhub.utils import maybe_future
from tornado import web
from traitlets import (
    Any,
    Bool,
    Callable,
    CaselessStrEnum,
    Dict,
    Float,
    Int,
    List,
    Unicode,
    Union,
    default,
)

from . import availability, naming, placement, profiles, taskinfo
from .envdrop import EnvDrop
from .framework import FrameworkConfig, LaunchFailed, LaunchRequest, MesosFramework, TaskRecord
from .gpuqueue.traits import GpuQueueTraits
from .mesos.states import LIVE_STATES, TERMINAL_STATES
from .progress import ProgressFeed
from .tasks import MAX_LAUNCHES
from .traits import FrameworkTraits


async def _apply_profile(spawner: MesosSpawner, user_options: dict) -> None:
    """Default ``apply_user_options``: validate against ``profile_list`` and apply its overrides."""
    await spawner.apply_profile(user_options)


class MesosSpawner(Spawner, FrameworkTraits, GpuQueueTraits):
    """Run each single-user server as a task on an Apache Mesos cluster."""

    # ------------------------------------------------------------------ what a task gets

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
    disk_limit = Float(0.0, help="Disk (MiB; Mesos calls it MB) each notebook reserves.").tag(
        config=True
    )

    @default("cpu_limit")
    def _default_cpu_limit(self) -> float:
        return 1.0

    @default("mem_limit")
    def _default_mem_limit(self) -> int:
        return 1024 * 1024 * 1024

    @default("ip")
    def _default_ip(self) -> str:
        return "0.0.0.0"

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

    allow_root = Bool(
        False, help="Allow notebooks to run as uid 0. Off: such a spawn is refused."
    ).tag(config=True)

    spark_master = Unicode(
        None, allow_none=True, help="Spark master URL (e.g. `mesos://zk://.../mesos`)."
    ).tag(config=True)
    spark_executor_image = Unicode(
        None, allow_none=True, help="Docker image of the Spark executors."
    ).tag(config=True)
    spark_role = Unicode(None, allow_none=True, help="`spark.mesos.role` for executors.").tag(
        config=True
    )
    spark_conf = Dict(help="Extra `spark.*` settings passed to the notebook's Spark.").tag(
        config=True
    )

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

    env_file_delivery = Bool(
        True,
        help="""Docker containerizer: pass secret variables (JUPYTERHUB_API_TOKEN and others named
        like tokens, passwords or keys) in a one-time env file that the Mesos fetcher downloads
        from the hub into the task's sandbox, not as `docker run -e`, whose command line anyone
        on the agent can read with `ps`. The agents must reach `env_file_host:env_file_port`.""",
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

    use_agent_hostname = Bool(
        False,
        help="""Connect to the notebook by the agent's hostname instead of the offer's
        `url.address.ip` (agent hostnames need not resolve from the hub).""",
    ).tag(config=True)

    # ------------------------------------------------------------------ profiles

    profile_list = Union(
        [List(Dict()), Callable()],
        default_value=[],
        help="""Profiles offered at login, KubeSpawner's shape: `{display_name, slug,
        description, default, mesosspawner_override, profile_options, groups}`.""",
    ).tag(config=True)

    options_form_template_paths = List(
        Unicode(), help="Directories searched first for `options_form.html` (admin overrides)."
    ).tag(config=True)

    @default("options_form")
    def _default_options_form(self):
        return MesosSpawner._render_options_form

    @default("options_from_form")
    def _default_options_from_form(self):
        return lambda formdata: profiles.options_from_form(formdata)

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return _apply_profile

    # ------------------------------------------------------------------ state

    task_id = Unicode(None, allow_none=True)
    agent_id = Unicode(None, allow_none=True)
    agent_hostname = Unicode(None, allow_none=True)
    agent_ip = Unicode(None, allow_none=True)
    host_port = Int(0)
    profile_slug = Unicode(None, allow_none=True)
    _feed = Any(None, allow_none=True)
    _starting = False  # inside start(): poll() must say "running" (None), not 0

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.task_id = state.get("task_id")
        self.agent_id = state.get("agent_id")
        self.agent_hostname = state.get("agent_hostname")
        self.agent_ip = state.get("agent_ip")
        self.host_port = int(state.get("host_port") or 0)
        self.profile_slug = state.get("profile")
        if self.task_id:
            self.framework.track(
                TaskRecord(
                    self.task_id,
                    agent_id=self.agent_id,
                    hostname=self.agent_hostname,
                    ip=self.agent_ip,
                    ports=(self.host_port,) if self.host_port else (),
                    state="TASK_UNKNOWN",
                )
            )

    def get_state(self) -> dict:
        state = super().get_state()
        if self.task_id:
            state.update(
                task_id=self.task_id,
                agent_id=self.agent_id,
                agent_hostname=self.agent_hostname,
                agent_ip=self.agent_ip,
                host_port=self.host_port,
                profile=self.profile_slug,
                # Read by the images service (admin:server_state): which server runs which digest.
                image=self.image,
            )
        return state

    def clear_state(self) -> None:
        super().clear_state()
        self.task_id = self.agent_id = self.agent_hostname = self.agent_ip = None
        self.host_port = 0
        self._feed = None  # JupyterHub clears state as a new spawn begins

    # ------------------------------------------------------------------ framework

    @property
    def framework(self) -> MesosFramework:
        return MesosFramework.shared(self.framework_config(), logger=self.log)

    def _roles(self) -> tuple[str, ...]:
        if self.framework_roles:
            return tuple(self.framework_roles)
        roles = ["*"]
        for role in [self.role, self.spark_role, *self._profile_roles()]:
            if role and role not in roles:
                roles.append(role)
        return tuple(roles)

    def _profile_roles(self) -> list[str]:
        """Roles a list ``profile_list`` names, in profiles and in their options' choices (a
        callable's are unknown until a spawn: ``start()`` refuses those not subscribed)."""
        raw = self.profile_list if isinstance(self.profile_list, list) else []
        overrides = []
        for p in raw:
            overrides.append(p.get("mesosspawner_override") or {})
            for option in (p.get("profile_options") or {}).values():
                for choice in (option.get("choices") or {}).values():
                    overrides.append(choice.get("mesosspawner_override") or {})
        return [o[key] for o in overrides for key in ("role", "spark_role") if o.get(key)]

    def framework_config(self) -> FrameworkConfig:
        return FrameworkConfig(
            master=self.mesos_master,
            name=self.framework_name,
            user=self.framework_user,
            roles=self._roles(),
            failover_timeout=self.failover_timeout,
            principal=self.principal,
            secret=self.secret,
            ca_file=self.mesos_ca_file,
            webui_url=self.framework_webui_url,
            id_file=self.framework_id_file,
            hub_id=self.hub_id,
            refuse_seconds=self.offer_refuse_seconds,
            idle_refuse_seconds=self.idle_offer_refuse_seconds,
            strategy=self.placement_strategy,
            orphan_grace_seconds=self.orphan_grace_seconds or 0.0,
            orphan_kill=bool(self.orphan_grace_seconds),
            reconcile_interval=self.reconcile_interval,
            reconcile_retry_seconds=self.reconcile_retry_seconds,
            gpu_queue=self.gpu_queue_policy(),
            gpu_state_file=self.gpu_queue_state_file or None,
            gpu_queue_tick=self.gpu_queue_tick,
        )

    # ------------------------------------------------------------------ profiles

    async def _profiles(self) -> tuple[profiles.Profile, ...]:
        raw = self.profile_list
        if callable(raw):
            raw = await maybe_future(raw(self))
        return profiles.load_profile_list(raw or [], allowed_overrides=self._overridable())

    def _overridable(self) -> set[str]:
        return set(self.trait_names(config=True))

    def _user_groups(self) -> list[str]:
        try:
            return [g.name for g in self.user.groups]
        except AttributeError:
            return []

    async def _render_options_form(self) -> str:
        profs = await self._profiles()
        if not profs:
            return ""
        await self.framework.refresh_capacity()
        capacity = self.profile_capacity(profs)
        notice = ""
        last_stop = self.framework.last_stop_for(self.user.name, self.name or "")
        if last_stop:
            notice = (
                '<div class="alert alert-warning mesosspawner-last-stop" role="alert">'
                f"Your last server stopped: {html.escape(last_stop)}</div>\n"
            )
        return notice + profiles.render_form(
            profs,
            capacity=capacity,
            user_groups=self._user_groups(),
            template_paths=self.options_form_template_paths,
            defaults={
                "cpu_limit": self.cpu_limit,
                "mem_limit": self.mem_limit,
                "gpus": self.gpus,
                "image": self.image,
            },
        )

    def profile_capacity(self, profs) -> dict[str, profiles.ProfileCapacity]:
        """Live capacity per profile from the framework's view of the cluster: one sentence
        each, about that profile only (``availability``)."""
        fw = self.framework
        agents = fw.capacity()
        out = {}
        for p in profs:
            request = self._request_for(p.override)
            out[p.slug] = availability.capacity(
                request,
                agents,
                totals_known=fw.totals_known,
                patience=self.start_timeout,
                queue=self.gpu_preview(fw.gpu_queue, request.gpus, p.slug, p.override),
            )
        return out

    async def apply_profile(self, user_options) -> None:
        """Validate ``user_options`` (form or REST) and apply the chosen profile's overrides."""
        try:
            profs = await self._profiles()
        except ValueError as e:
            self.log.error("Invalid profile_list configuration: %s", e)
            raise web.HTTPError(500, f"profile_list is misconfigured: {e}") from None
        if not profs:
            if user_options:
                raise web.HTTPError(
                    400, f"This hub has no profiles; unexpected options {sorted(user_options)}"
                )
            return
        try:
            profile, override = profiles.resolve(profs, user_options, self._user_groups())
        except profiles.UserOptionsError as e:
            raise web.HTTPError(400, str(e)) from None
        self.profile_slug = profile.slug
        for key, value in override.items():
            if not self.has_trait(key):
                raise web.HTTPError(500, f"profile {profile.slug} overrides unknown trait {key}")
            setattr(self, key, value)

    # ------------------------------------------------------------------ start / poll / stop

    def _resolve_ids(self) -> tuple[str | None, int | None, int | None]:
        """(system user name, uid, gid) the notebook runs as; SpawnRefused for root unless
        allowed, and for an image without a uid."""
        name = self.system_user(self) if callable(self.system_user) else self.system_user
        if name is None:
            name = self.user.name
        uid = self.uid(self) if callable(self.uid) else self.uid
        gid = self.gid(self) if callable(self.gid) else self.gid
        try:
            pw = pwd.getpwnam(name) if name else None
        except KeyError:
            pw = None
        if pw is not None:
            uid = pw.pw_uid if uid is None else uid
            gid = pw.pw_gid if gid is None else gid
        if not self.allow_root:
            # command.user (a name) decides for plain and Mesos-containerizer tasks, the uid for
            # Docker: either one being root is a root notebook.
            why = None
            if uid == 0:
                why = "uid 0"
            elif name == "root":
                why = "system user 'root'"
            elif pw is not None and pw.pw_uid == 0:
                why = f"system user {name!r}, which is uid 0 on this host"
            if why:
                raise SpawnRefused(
                    f"Refusing to run {self.user.name}'s notebook as root ({why}); choose a"
                    " non-root system_user/uid, or set c.MesosSpawner.allow_root = True"
                )
        if self.image and uid is None:
            raise SpawnRefused(
                f"No uid for user {name!r}: create the system user or set c.MesosSpawner.uid"
            )
        return name, uid, gid

    def _request_for(self, override: dict | None = None) -> placement.Request:
        def get(name):
            if override and name in override:
                # Through the trait, as setattr would: "1G" -> bytes, lists checked, ...
                return self.traits()[name].validate(self, override[name])
            return getattr(self, name)

        spark = get("spark_master")
        extra_ports = taskinfo.spark_ports_needed(
            taskinfo.SparkSettings(spark, None, None, {}) if spark else None
        )
        return placement.Request(
            key=f"{self.user.id if hasattr(self.user, 'id') else self.user.name}/{self.name}",
            cpus=float(get("cpu_limit") or 1.0),
            mem=float(get("mem_limit") or 0) / (1024 * 1024),
            disk=float(get("disk_limit") or 0.0),
            gpus=int(get("gpus") or 0),
            ports=1 + extra_ports,
            role=get("role") or "*",
            constraints=placement.validate_constraints(get("constraints") or []),
        )

    def _task_spec(self, ids, volumes: tuple[dict, ...], nonce: str) -> taskinfo.TaskSpec:
        """The notebook's task as plain data, before any offer: the framework completes it
        with the placement (ports, Spark's address) in ``taskinfo.build_task_info``."""
        system_user, uid, gid = ids
        env = self.get_env()
        env.update(self.image_env())
        pw = _passwd(system_user) if system_user and not self.image else None
        env.update(
            taskinfo.identity_env(
                system_user,
                uid,
                gid,
                image=self.image,
                allow_root=self.allow_root,
                home=pw.pw_dir if pw else None,
                shell=pw.pw_shell if pw else None,
            )
        )
        spark = None
        if self.spark_master:
            spark = taskinfo.SparkSettings(
                master=self.spark_master,
                executor_image=self.spark_executor_image,
                role=self.spark_role,
                conf=dict(self.spark_conf),
            )
        containerizer = taskinfo.containerizer_for(self.containerizer, self.gpus)
        return taskinfo.TaskSpec(
            task_id=naming.task_id(self.hub_id, self.user.name, self.name or "", nonce),
            name=f"jupyter {naming.safe_name(self.user.name)}"
            + (f"/{naming.safe_name(self.name)}" if self.name else ""),
            argv=tuple(self.cmd + self.get_args()),
            env=env,
            # An admin's own JUPYTERHUB_SERVICE_URL (c.Spawner.environment) wins, as in get_env.
            service_url=None
            if "JUPYTERHUB_SERVICE_URL" in self.environment
            else self._service_url(),
            image=self.image,
            containerizer=containerizer,
            network_mode=self.network_mode,
            container_port=self.container_port,
            user=taskinfo.command_user(system_user, image=self.image, hub_is_root=os.getuid() == 0),
            uid=uid,
            gid=gid,
            volumes=volumes,
            labels=taskinfo.labels_for(self.hub_id, self.user.name, self.name or ""),
            spark=spark,
            kill_grace_seconds=self.kill_grace_seconds,
            force_pull_image=self.force_pull_image,
            docker_parameters=tuple(sorted(self.docker_parameters.items())),
            entrypoint_drops_root=self.image_starts_as_root,
            env_file_uris=self._prepare_env_files(env, containerizer),
        )

    def _service_url(self) -> taskinfo.ServiceURL:
        """JUPYTERHUB_SERVICE_URL as ``Spawner.get_env`` writes it, but for the port."""
        base_url = self.server.base_url if self.server else "/"
        return taskinfo.ServiceURL("https" if self.internal_ssl else "http", self.ip, base_url)

    def _prepare_env_files(self, env: dict[str, str], containerizer: str) -> tuple[str, ...]:
        """Put this spawn's secret variables in the one-time env-file server, before the launch
        is queued (they do not depend on the offer): one URL per possible launch attempt, as
        each answers once. Discarded when the launch ends."""
        self._discard_env_files()
        enabled = self.env_file_delivery
        if not taskinfo.secrets_in_env_file(self.image, containerizer, enabled=enabled):
            return ()
        _, secret = taskinfo.split_secret_env(env)
        if not secret:
            return ()
        text = taskinfo.docker_env_file(secret)
        host = self.env_file_host or urlparse(self.hub.api_url).hostname or "127.0.0.1"
        drop = EnvDrop.shared(
            self.env_file_ip or self.hub.ip or "0.0.0.0", self.env_file_port, host
        )
        self._env_drop = drop
        urls = []
        for _ in range(MAX_LAUNCHES):
            key, url = drop.put(text, ttl=self.start_timeout + 60)
            self._env_file_keys.append(key)
            urls.append(url)
        return tuple(urls)

    def _discard_env_files(self) -> None:
        # Fetched before the task can run, so once a launch has ended none is needed again.
        drop = getattr(self, "_env_drop", None)
        for key in getattr(self, "_env_file_keys", ()):
            drop.discard(key)
        self._env_file_keys: list[str] = []

    def image_env(self) -> dict[str, str]:
        """Name the environment that produced a result: the image reference (and digest)."""
        if not self.image:
            return {}
        env = {"MESOSSPAWNER_IMAGE": self.image}
        if "@sha256:" in self.image:
            env["MESOSSPAWNER_IMAGE_DIGEST"] = self.image.split("@", 1)[1]
        return env

    async def start(self):
        # JupyterHub's contract: a spawner that has not finished starting counts as running.
        self._starting = True
        try:
            return await self._start()
        finally:
            self._starting = False

    async def _start(self) -> str:
        # progress() may have been asked for before start() ran: keep its (unfinished) feed.
        if self._feed is None or self._feed.finished:
            self._feed = ProgressFeed()
        feed = self._feed
        feed.image = self.image
        try:
            ids = self._resolve_ids()
            request = self._request_for()
            # Volumes are checked now so a bad template fails before anything reaches Mesos.
            volumes = taskinfo.expand_volumes(
                self.volumes,
                username=self.user.name,
                uid=ids[1],
                gid=ids[2],
                servername=self.name or "",
            )
        except (ValueError, SpawnRefused) as e:
            feed.fail(str(e))
            raise _spawn_error(str(e), reason="config") from None
        fw = self.framework
        if request.role not in fw.config.roles:
            # No offer of a role the framework did not subscribe with ever comes: fail now.
            why = (
                f"role {request.role!r} is not one this hub's Mesos framework subscribed with"
                f" ({', '.join(fw.config.roles)}); roles of a callable profile_list cannot be"
                " known in advance: list them all in c.MesosSpawner.framework_roles"
            )
            feed.fail(why)
            raise _spawn_error(why, reason="config")
        if self.image:
            self.log.info("Starting %s with image %s", self._log_name, self.image)
        await fw.ensure_started()
        never = await fw.never_fits(request)
        if never:
            feed.fail(never)
            raise _spawn_error(
                f"This server can never start on this cluster: {never}", reason="capacity"
            )
        try:
            spec = self._task_spec(ids, volumes, secrets.token_hex(4))
        except ValueError as e:  # e.g. a secret value an env file cannot hold
            self._discard_env_files()
            why = f"Could not build the Mesos task: {e}"
            feed.fail(why)
            raise _spawn_error(why, reason="launch") from None
        # Give up just before JupyterHub's own timeout, so the person learns *why*.
        patience = max(1.0, self.start_timeout - 2.0)
        claim = self.gpu_claim(self._user_groups(), self.profile_slug, patience)
        req = LaunchRequest(needs=request, spec=spec, observer=feed, gpu=claim)
        feed.give_up_after = patience
        try:
            record = await asyncio.wait_for(fw.launch(req), patience)
        except TimeoutError:
            why = fw.why_waiting(req)
            feed.fail(why)
            raise _spawn_error(
                f"Gave up after {availability.duration_words(patience)}: {why}. Nothing"
                " was started; try again later, or pick another profile.",
                reason="timeout",
            ) from None
        except LaunchFailed as e:
            feed.fail(str(e))
            raise _spawn_error(str(e), reason="launch") from None
        except asyncio.CancelledError:
            feed.fail("spawn cancelled")
            raise
        finally:
            self._discard_env_files()
        fw.forget_stop(self.user.name, self.name or "")
        self.task_id = record.task_id
        self.agent_id = record.agent_id
        self.agent_hostname = record.hostname
        self.agent_ip = record.ip
        # The ports are the placement's: read from the launched task, never set while placing.
        self.host_port = record.ports[0]
        self.port = spec.container_port if spec.network_mode == "bridge" else self.host_port
        feed.running(record)
        host = record.hostname if self.use_agent_hostname else (record.ip or record.hostname)
        return f"http://{host}:{self.host_port}"

    async def progress(self):
        if self._feed is None:
            self._feed = ProgressFeed()
        async for event in self._feed.events():
            yield event

    async def poll(self):
        fw = self.framework
        # Started even without a task: a restarted hub's first polls bring up the framework,
        # whose reconciliation finds tasks a crashed hub left behind.
        await fw.ensure_started()
        if not self.task_id:
            return None if self._starting else 0
        orm = getattr(self, "orm_spawner", None)
        fw.gpu_queue.note_activity(self.task_id, getattr(orm, "last_activity", None))
        record = fw.task(self.task_id)
        if record is None or record.state == "TASK_UNKNOWN":
            # After a hub restart: wait for reconciliation before believing anything.
            if not await fw.wait_reconciled(30):
                return None
            await fw.wait_change(self.task_id, 5)
            record = fw.task(self.task_id)
            if record is None or record.state == "TASK_UNKNOWN":
                return None
        if record.state in LIVE_STATES:
            return None
        if (
            record.state == "TASK_UNREACHABLE"
            and time.time() - record.state_since < self.unreachable_grace_seconds
        ):
            # A partition may heal: the task then comes back RUNNING and this server keeps it.
            return None
        reason = fw.kill_reason(self.task_id) or f"task {record.describe()}"
        # Kept by the framework: JupyterHub drops this spawner object once the server is gone.
        fw.note_stop(self.user.name, self.name or "", reason)
        self.log.warning("%s stopped: %s", self._log_name, reason)
        return 0 if record.state == "TASK_FINISHED" else 1

    async def stop(self, now: bool = False):
        if not self.task_id:
            return
        fw = self.framework
        record = fw.task(self.task_id)
        if record is None:
            fw.track(TaskRecord(self.task_id, agent_id=self.agent_id, state="TASK_RUNNING"))
        record = await fw.kill(self.task_id, timeout=self.kill_grace_seconds + 30)
        if record is not None and record.state not in TERMINAL_STATES:
            # The framework keeps killing it (orphan cleanup); the person learns on the spawn
            # page why its resources may still be busy.
            why = (
                f"its task {self.task_id} did not confirm the kill (still {record.describe()});"
                " the hub keeps trying to kill it"
            )
            fw.note_stop(self.user.name, self.name or "", why)
            self.log.warning("%s stopped, but %s", self._log_name, why)

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        if self.spark_master:
            env.setdefault("SPARK_MASTER", self.spark_master)
            env.setdefault("MASTER", self.spark_master)
        return env


def _passwd(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


class SpawnRefused(Exception):
    """The configuration refuses this spawn before anything reaches Mesos (a root notebook, an
    image without a uid); the message says what to change."""


class SpawnError(Exception):
    """A failed spawn (JupyterHub < 6); the hub shows ``jupyterhub_message`` to the person."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.jupyterhub_message = message


def _spawn_error(message: str, reason: str = "mesos", status: int = 500) -> Exception:
    """JupyterHub 6's SpawnException (no traceback logged, message shown) where available.

    ``jupyterhub_message`` is what the person reads: the plain message, not the exception's
    ``str()`` ("500 SpawnException(reason=timeout): ...")."""
    if SpawnException is not None:
        error = SpawnException(message, reason=reason, status_code=status)
        error.jupyterhub_message = message
        return error
    return SpawnError(message)


__all__ = ["MesosSpawner", "SpawnError", "SpawnRefused"]
