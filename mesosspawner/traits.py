"""The traits that configure the hub's connection to Mesos and its shared framework.

A part of ``MesosSpawner`` (its base class): set them as ``c.MesosSpawner.<name>``.
``MesosSpawner.framework_config()`` turns them into the framework's ``FrameworkConfig``.
"""

from __future__ import annotations

import getpass
import os

from traitlets import Bool, CaselessStrEnum, Float, List, Unicode, default
from traitlets.config import LoggingConfigurable

from . import placement


class FrameworkTraits(LoggingConfigurable):
    """Where the Mesos master is, and how the hub's one framework behaves there."""

    mesos_master = Unicode(
        os.environ.get("MESOS_MASTER", "http://127.0.0.1:5050"),
        help="""The Mesos master: `http://host:5050`, a comma list of masters (the leader is
        followed through redirects), or `zk://host1:2181,host2:2181/mesos`.""",
    ).tag(config=True)

    framework_name = Unicode(
        "jupyterhub", help="Name of the Mesos framework this hub registers."
    ).tag(config=True)

    framework_roles = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        help="""Roles the framework subscribes with (MULTI_ROLE). Default: `*` plus every role
        named by `role`, `spark_role` or a profile override.""",
    ).tag(config=True)

    framework_user = Unicode(
        help="FrameworkInfo.user: the default user for tasks (the hub's own user by default)."
    ).tag(config=True)

    @default("framework_user")
    def _default_framework_user(self) -> str:
        return getpass.getuser()

    failover_timeout = Float(
        4 * 7 * 24 * 3600.0,
        help="""Seconds Mesos keeps the framework (and every notebook) alive after the hub's
        stream drops. Mesos's own default, 0, kills every notebook when the hub restarts.""",
    ).tag(config=True)

    principal = Unicode(
        None,
        allow_none=True,
        help="""The Mesos principal the hub's framework authenticates as (HTTP basic), on every
        scheduler call and every read of the master. A secure cluster needs one: see
        docs/admin-guide.md, "Hardening a real cluster".""",
    ).tag(config=True)
    secret = Unicode(
        None,
        allow_none=True,
        help="""The secret of `principal`. Prefer `secret_file`, which keeps it out of the
        config file; set one of the two.""",
    ).tag(config=True)
    secret_file = Unicode(
        None,
        allow_none=True,
        help="""A file holding the secret of `principal` (its whole content, without the final
        line break): mode 0600, readable by the hub's user. Read when the framework starts and
        by `check_config`; the secret is never logged.""",
    ).tag(config=True)
    allow_insecure_cluster = Bool(
        False,
        help="""Start even when the Mesos cluster lets notebooks take it over. At start
        (`check_config(c)`, last in jupyterhub_config.py) the hub reads the leading master's
        `/master/flags` with its credentials and one agent's `/state` without any: if
        frameworks or operators are not authenticated, there are no ACLs, the masters write
        ZooKeeper without a digest, or an agent answers anonymously, it logs an error naming
        the flags to set and refuses to start. True: it logs the same findings as warnings and
        starts (localmesos, the demo: they authenticate nothing).""",
    ).tag(config=True)
    cluster_check_timeout = Float(
        15.0,
        help="""Seconds the start check waits for the master (and ZooKeeper, for `zk://`)
        before refusing to start because the cluster could not be checked.""",
    ).tag(config=True)
    mesos_ca_file = Unicode(
        None, allow_none=True, help="CA bundle to verify an https:// Mesos master."
    ).tag(config=True)

    framework_id_file = Unicode(
        help="""Where the framework id is persisted so a restarted hub re-subscribes as the same
        framework. Default: `mesosspawner-framework.json` next to the hub's sqlite database
        (or in the working directory).""",
    ).tag(config=True)

    @default("framework_id_file")
    def _default_id_file(self) -> str:
        db_url = ""
        try:
            db_url = self.config.JupyterHub.db_url or ""
        except AttributeError:
            pass
        base = "."
        if isinstance(db_url, str) and db_url.startswith("sqlite:///"):
            base = os.path.dirname(db_url[len("sqlite:///") :]) or "."
        return os.path.join(base, "mesosspawner-framework.json")

    hub_id = Unicode(
        help="Identity of this hub in task ids and labels (default: the framework name)."
    ).tag(config=True)

    @default("hub_id")
    def _default_hub_id(self) -> str:
        return self.framework_name

    # Enums: a typo is refused when the spawner is configured, not found as a spawn timeout.
    placement_strategy = CaselessStrEnum(
        list(placement.STRATEGIES),
        "spread",
        help="`spread` notebooks over agents, or `binpack` them onto few agents.",
    ).tag(config=True)

    unreachable_grace_seconds = Float(
        120.0,
        help="""How long a server whose agent Mesos reports unreachable still counts as running.
        If the partition heals within it, Mesos reports the task RUNNING again and the server
        carries on; after it, the server is stopped, and its task is killed should the agent
        ever come back.""",
    ).tag(config=True)

    reconcile_interval = Float(
        600.0,
        help="""Seconds between full task reconciliations with the Mesos master (Mesos's
        reconciliation guide asks frameworks to reconcile periodically).""",
    ).tag(config=True)

    orphan_grace_seconds = Float(
        300.0,
        help="""Tasks of this hub's framework that no spawner claims after a reconciliation are
        killed after this many seconds (0 disables orphan killing).""",
    ).tag(config=True)

    reconcile_retry_seconds = Float(
        5.0,
        help="""Seconds before asking the master again about tasks it has not answered for
        (after a failover a new leader stays silent about agents it has not heard from yet).""",
    ).tag(config=True)

    offer_refuse_seconds = Float(
        5.0,
        help="""Seconds Mesos holds back an offer this hub declined or launched on while
        notebooks are waiting: short, so freed resources are offered again soon.""",
    ).tag(config=True)

    idle_offer_refuse_seconds = Float(
        300.0,
        help="""Seconds Mesos holds back an offer this hub declined with nothing waiting (the
        framework also suppresses offers then; a new spawn revives them).""",
    ).tag(config=True)

    maintenance_horizon_seconds = Float(
        24 * 3600.0,
        help="""No new notebook starts on a machine whose Mesos maintenance window (scheduled by
        an operator, `POST /master/maintenance/schedule`) begins within this many seconds, or has
        begun: a notebook cannot move, and its person would lose it when the machine goes down.
        0 avoids only machines whose window has begun.""",
    ).tag(config=True)

    framework_webui_url = Unicode(
        None,
        allow_none=True,
        help="FrameworkInfo.webui_url: the link the Mesos web UI shows for this framework.",
    ).tag(config=True)
