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
from jupyterhub.utils import make_ssl_context, maybe_future, url_path_join
from tornado import web
from traitlets import (
    Any,
    Callable,
    Dict,
    Int,
    List,
    Unicode,
    Union,
    default,
)

from . import availability, first_answer, identity, naming, placement, profiles, spark, taskinfo
from .envdrop import EnvDrop, EnvFiles
from .framework import FrameworkConfig, LaunchFailed, LaunchRequest, MesosFramework, TaskRecord
from .gpuqueue.traits import GpuQueueTraits
from .mesos.states import LIVE_STATES, MAY_RETURN_STATES, TERMINAL_STATES
from .progress import ProgressFeed
from .security_traits import SecurityTraits
from .spark_cleanup import CleanupError
from .spark_traits import SparkTraits
from .task_traits import TaskTraits
from .tasks import MAX_LAUNCHES
from .traits import FrameworkTraits


async def _apply_profile(spawner: MesosSpawner, user_options: dict) -> None:
    """Default ``apply_user_options``: validate against ``profile_list`` and apply its overrides."""
    await spawner.apply_profile(user_options)


class MesosSpawner(
    Spawner, TaskTraits, FrameworkTraits, SparkTraits, SecurityTraits, GpuQueueTraits
):
    """Run each single-user server as a task on an Apache Mesos cluster."""

    # ------------------------------------------------------------------ what a task gets
    # (its traits are ``TaskTraits``; JupyterHub's own limits get defaults here)

    @default("cpu_limit")
    def _default_cpu_limit(self) -> float:
        return 1.0

    @default("mem_limit")
    def _default_mem_limit(self) -> int:
        return 1024 * 1024 * 1024

    @default("ip")
    def _default_ip(self) -> str:
        return "0.0.0.0"

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
    spark_driver = Unicode(None, allow_none=True)  # the driver's libprocess host:port
    profile_slug = Unicode(None, allow_none=True)
    task_gpus = Int(0)  # the GPUs the running task holds (for max_gpus_per_user)
    _feed = Any(None, allow_none=True)
    _env_files = Any(None, allow_none=True)  # EnvFiles of the spawn under way
    _starting = False  # inside start(): poll() must say "running" (None), not 0

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.task_id = state.get("task_id")
        self.agent_id = state.get("agent_id")
        self.agent_hostname = state.get("agent_hostname")
        self.agent_ip = state.get("agent_ip")
        self.host_port = int(state.get("host_port") or 0)
        self.spark_driver = state.get("spark_driver")
        self.profile_slug = state.get("profile")
        self.task_gpus = int(state.get("gpus") or 0)
        if self.task_id:
            self.framework.track(self._saved_record())

    def _saved_record(self) -> TaskRecord:
        """The task as this spawner last knew it (running), for the framework to claim until
        Mesos answers for it (``TaskRecord.reconciled``)."""
        return TaskRecord(
            self.task_id,
            agent_id=self.agent_id,
            hostname=self.agent_hostname,
            ip=self.agent_ip,
            ports=(self.host_port,) if self.host_port else (),
            state="TASK_RUNNING",
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
                spark_driver=self.spark_driver,
                profile=self.profile_slug,
                gpus=self.task_gpus,
                # Read by the images service (admin:server_state): which server runs which digest.
                image=self.image,
            )
        return state

    def clear_state(self) -> None:
        super().clear_state()
        self.task_id = self.agent_id = self.agent_hostname = self.agent_ip = None
        self.spark_driver = None
        self.host_port = 0
        self.task_gpus = 0
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
            secret_file=self.secret_file,
            maintenance_horizon=self.maintenance_horizon_seconds,
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
        last_stop = self.framework.stops.last(self.user.name, self.name or "")
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
                spark_role=self.spark_role_for(p.override),
                quota=fw.quota(request.role),
                queue=self.gpu_preview(fw.gpu_queue, request.gpus, p.slug, p.override),
            )
        return out

    def spark_role_for(self, override: dict | None = None) -> str | None:
        """The role a Spark profile's executors take resources from (None: not a Spark profile,
        or Spark in local mode, whose jobs run inside the notebook)."""
        override = override or {}
        master = override.get("spark_master", self.spark_master)
        if not master or spark.is_local(spark.SparkSettings(master)):
            return None
        return override.get("spark_role", self.spark_role) or override.get("role", self.role)

    def uses_spark(self) -> bool:
        """Whether this hub's notebooks may start Spark frameworks on Mesos (its config or a
        profile; Spark in local mode starts none)."""
        raw = self.profile_list if isinstance(self.profile_list, list) else []
        masters = [self.spark_master]
        masters += [(p.get("mesosspawner_override") or {}).get("spark_master") for p in raw]
        return any(m and not spark.is_local(spark.SparkSettings(m)) for m in masters)

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

    def _resolve_ids(self) -> tuple[str, int, int | None]:
        """(system user name, uid, gid) the notebook runs as (``identity.resolve``); SpawnRefused
        for an account the hub host does not know, below ``min_uid``, or root unless allowed."""
        name = self.system_user(self) if callable(self.system_user) else self.system_user
        if name is None:
            name = self.user.name
        uid = self.uid(self) if callable(self.uid) else self.uid
        gid = self.gid(self) if callable(self.gid) else self.gid
        pw = _passwd(name) if name else None
        account = pw and identity.Account(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir, pw.pw_shell)
        try:
            return identity.resolve(
                self.user.name,
                name,
                account,
                uid,
                gid,
                min_uid=self.min_uid,
                allow_root=self.allow_root,
            )
        except identity.IdentityRefused as e:
            raise SpawnRefused(str(e)) from None

    def _gpu_ceiling(self, gpus: int) -> str | None:
        """Why ``gpus`` more would put the person over ``max_gpus_per_user``, or None."""
        limit = self.max_gpus_per_user
        if not limit or not gpus:
            return None
        spawners = getattr(self.user, "spawners", None) or {}
        others = [s for s in spawners.values() if s is not self and getattr(s, "active", False)]
        used = sum(getattr(s, "task_gpus", 0) for s in others)
        if used + gpus <= limit:
            return None
        return (
            f"{self.user.name} would hold {used + gpus} GPUs, over the limit of {limit} per"
            f" person (c.MesosSpawner.max_gpus_per_user): {used} are in use by your other"
            " servers; stop one, or pick a profile with fewer GPUs"
        )

    def _request_for(self, override: dict | None = None) -> placement.Request:
        def get(name):
            if override and name in override:
                # Through the trait, as setattr would: "1G" -> bytes, lists checked, ...
                return self.traits()[name].validate(self, override[name])
            return getattr(self, name)

        master = get("spark_master")
        extra_ports = taskinfo.spark_ports_needed(spark.SparkSettings(master) if master else None)
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
        spark_settings = self.spark_settings(system_user)
        if spark_settings is not None and self.spark_secret:
            env[spark.SECRET_ENV] = self.spark_secret
        containerizer = taskinfo.containerizer_for(self.containerizer, self.gpus)
        secret_env = tuple(self.secret_env)
        if self.environment_is_secret:
            secret_env += tuple(self.environment)
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
            spark=spark_settings,
            kill_grace_seconds=self.kill_grace_seconds,
            force_pull_image=self.force_pull_image,
            docker_parameters=(
                *(tuple(p) for p in self.docker_security_parameters),
                *sorted(self.docker_parameters.items()),
            ),
            entrypoint_drops_root=self.image_starts_as_root,
            env_file_uris=self._prepare_env_files(env, secret_env),
            secret_env=secret_env,
            env_file_delivery=self.env_file_delivery,
        )

    async def _spark_notes(self, settings: spark.SparkSettings, feed: ProgressFeed) -> None:
        """Tell the person where their Spark jobs run, and what the Spark role has free."""
        fw = self.framework
        if not spark.is_local(settings):
            fw.spark.start(self.spark_cleanup_interval)
            await fw.refresh_capacity()  # fresh after the form (at most 10 s old), else <= 2 s
        note = spark.progress_note(settings, fw.capacity(), self.spark_role_for())
        if note:
            feed.note(note)

    def _service_url(self) -> taskinfo.ServiceURL:
        """JUPYTERHUB_SERVICE_URL as ``Spawner.get_env`` writes it, but for the port."""
        base_url = self.server.base_url if self.server else "/"
        return taskinfo.ServiceURL("https" if self.internal_ssl else "http", self.ip, base_url)

    def _prepare_env_files(self, env: dict[str, str], secret_env) -> tuple[str, ...]:
        """Put this spawn's secret variables in the one-time env-file server, before the launch
        is queued (they do not depend on the offer): one URL per possible launch attempt, as
        each answers once. Discarded when the launch ends."""
        self._discard_env_files()
        delivery = self.env_file_delivery
        _, secret = taskinfo.secrets_in_env_file(env, secret_env, enabled=delivery)
        if not secret:
            return ()
        text = taskinfo.docker_env_file(secret)
        host = self.env_file_host or urlparse(self.hub.api_url).hostname or "127.0.0.1"
        certfile, keyfile = self.env_file_ssl_cert, self.env_file_ssl_key
        if not certfile and self.internal_ssl and self.internal_certs_location:
            # The hub's own internal certificate (JupyterHub's certipy store layout).
            base = os.path.join(self.internal_certs_location, "hub-internal", "hub-internal")
            certfile, keyfile = base + ".crt", base + ".key"
        try:
            drop = EnvDrop.shared(
                self.env_file_ip or self.hub.ip or "0.0.0.0",
                self.env_file_port,
                host,
                certfile=certfile or None,
                keyfile=keyfile or None,
            )
        except (OSError, ValueError) as e:  # a taken port, an unreadable certificate
            raise ValueError(f"the one-time env-file server cannot start: {e}") from None
        if self._env_files is None:
            self._env_files = EnvFiles()
        return self._env_files.prepare(drop, text, MAX_LAUNCHES, ttl=self.start_timeout + 60)

    def _discard_env_files(self) -> None:
        # Fetched before the task can run, so once a launch has ended none is needed again.
        if self._env_files is not None:
            self._env_files.discard()

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
        began = time.monotonic()
        # progress() may have been asked for before start() ran: keep its (unfinished) feed.
        if self._feed is None or self._feed.finished:
            self._feed = ProgressFeed()
        feed = self._feed
        feed.image = self.image
        try:
            ids = self._resolve_ids()
            spark_settings = self.spark_settings(ids[0])
            if spark_settings is not None:
                spark.check(spark_settings)
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
        over = self._gpu_ceiling(request.gpus)
        if over:
            feed.fail(over)
            raise _spawn_error(over, reason="config")
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
        if spark_settings is not None:
            await self._spark_notes(spark_settings, feed)
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
        fw.stops.forget(self.user.name, self.name or "")
        self.task_id = record.task_id
        self.agent_id = record.agent_id
        self.agent_hostname = record.hostname
        self.agent_ip = record.ip
        # The ports are the placement's: read from the launched task, never set while placing.
        self.host_port = record.ports[0]
        self.task_gpus = request.gpus
        self.port = spec.container_port if spec.network_mode == "bridge" else self.host_port
        if spark_settings is not None and len(record.ports) > spark.DRIVER_PORTS:
            host = record.ip or record.hostname or ""
            self.spark_driver = spark.driver_address(host, record.ports).libprocess
        feed.running(record)
        host = record.hostname if self.use_agent_hostname else (record.ip or record.hostname)
        url = f"http://{host}:{self.host_port}"
        # Within start_timeout, and never longer than JupyterHub's own wait (http_timeout).
        budget = min(self.http_timeout, self.start_timeout - (time.monotonic() - began) - 1)
        ended = None
        if self.server is not None and budget > 0:
            check_url = url_path_join(url + self.server.base_url, "api")
            ended = await first_answer.or_end(fw, record.task_id, check_url, budget, self._ssl())
        if ended is not None:
            why = (
                f"The notebook server stopped right after it started, before it answered: task"
                f" {ended.describe()} (on agent {ended.hostname or ended.agent_id})"
            )
            feed.fail(why)
            raise _spawn_error(why, reason="exited")
        feed.finish()
        return url

    def _ssl(self):
        """JupyterHub's context for reaching servers over internal SSL (None without)."""
        settings = getattr(self.user, "settings", None) or {}
        return make_ssl_context(
            settings.get("internal_ssl_key"),
            settings.get("internal_ssl_cert"),
            cafile=settings.get("internal_ssl_ca"),
        )

    async def progress(self):
        if self._feed is None:
            self._feed = ProgressFeed()
        async for event in self._feed.events():
            yield event

    async def poll(self):
        """What the framework's record says, at once: no round trip to Mesos, no waiting."""
        fw = self.framework
        # Started even without a task: a restarted hub's first polls bring up the framework,
        # whose reconciliation finds tasks a crashed hub left behind.
        await fw.ensure_started()
        if self.uses_spark():  # ... and the sweep for Spark frameworks their notebooks left
            fw.spark.start(self.spark_cleanup_interval)
        if not self.task_id:
            return None if self._starting else 0
        orm = getattr(self, "orm_spawner", None)
        fw.gpu_queue.note_activity(self.task_id, getattr(orm, "last_activity", None))
        record = fw.task(self.task_id)
        if record is None:
            fw.track(self._saved_record())  # e.g. a framework started anew in this process
            return None
        if not record.claimed:
            # Given up already (reported stopped, or stopped): it never counts as running again.
            culled = fw.stops.kill_reason(self.task_id)
            if culled:  # the hub stopped it (a GPU cull): the person's next page says why
                fw.stops.note(self.user.name, self.name or "", culled)
            return 0 if record.state == "TASK_FINISHED" else 1
        if not record.reconciled or record.state in LIVE_STATES:
            # Not reconciled: Mesos has not answered since the hub (re)started; until it does,
            # the server runs as it did (JupyterHub checks that it answers).
            return None
        if (
            record.state in MAY_RETURN_STATES
            and time.time() - record.state_since < self.unreachable_grace_seconds
        ):
            # A partition may heal, an agent the master forgot may re-register: the task then
            # comes back RUNNING and this server keeps it.
            return None
        reason = fw.stops.kill_reason(self.task_id) or f"task {record.describe()}"
        if self.spark_driver:
            # Its driver died with it; a Spark framework that outlives it is torn down now.
            fw.spark.stop_notebook_soon(self.task_id, self.spark_driver)
        # Kept by the framework: JupyterHub drops this spawner object once the server is gone.
        fw.stops.note(self.user.name, self.name or "", reason)
        self.log.warning("%s stopped: %s", self._log_name, reason)
        # JupyterHub calls no stop() now: should the task run again, the framework kills it.
        fw.abandon(self.task_id)
        return 0 if record.state == "TASK_FINISHED" else 1

    async def stop(self, now: bool = False):
        if not self.task_id:
            return
        fw = self.framework
        if fw.task(self.task_id) is None:
            fw.track(self._saved_record())
        record = await fw.kill(self.task_id, timeout=self.kill_grace_seconds + 30)
        if record is not None and record.state not in TERMINAL_STATES:
            # The framework keeps killing it (orphan cleanup); the person learns on the spawn
            # page why its resources may still be busy.
            why = (
                f"its task {self.task_id} did not confirm the kill (still {record.describe()});"
                " the hub keeps trying to kill it"
            )
            fw.stops.note(self.user.name, self.name or "", why)
            self.log.warning("%s stopped, but %s", self._log_name, why)
        if self.spark_driver or self.spark_master:  # a Spark notebook's (state or profile)
            await self._stop_spark(fw)

    async def _stop_spark(self, fw: MesosFramework) -> None:
        """Tear down the Spark frameworks the notebook started (none left running executors)."""
        try:
            torn = await fw.spark.stop_notebook(self.task_id, self.spark_driver, timeout=30)
        except CleanupError as e:
            self.log.warning("%s: Spark frameworks not torn down: %s", self._log_name, e)
            return
        if torn:
            self.log.info("%s: tore down its Spark framework(s) %s", self._log_name, torn)

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
