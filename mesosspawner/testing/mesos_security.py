"""Secure mode for a test cluster: credentials, ACLs and a ZooKeeper digest, written per cluster.

What docs/admin-guide.md ("Hardening a real cluster") tells an admin to set, as files a real
Mesos 1.11 master and agent read (``--credentials``, ``--acls``, ``--credential``,
``--http_credentials``), so the tests run the hub and its attackers against exactly that set-up:

- principals: ``hub`` (the spawner), ``operator`` (an admin), ``agent`` (every agent),
  ``spark`` (the Spark drivers in notebooks: people hold its secret, so it is the second
  principal an attacker has), ``intruder`` (valid credentials, no rights at all);
- ACLs, ``permissive: false``: only ``hub`` registers roles ``*`` and ``spark``, ``spark`` only
  ``spark``; nobody runs tasks as ``root``; only ``operator`` tears frameworks down, but for
  ``hub`` tearing down the ``spark`` principal's (notebooks' Spark frameworks); only
  ``operator`` reads executors, sandboxes and logs; ``hub`` reads what it needs of the master
  (frameworks, tasks, roles, flags);
- ZooKeeper: the masters authenticate with a digest (``zk://user:pass@...``) and so create their
  znodes readable by anyone, writable only by them.

Agents get only the operator's credentials for their HTTP endpoints: nobody else reads them.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

# Roles the hub's framework subscribes with in the tests' configs (`*` and the Spark profile's).
HUB_ROLES = ("*", "spark")


@dataclass(frozen=True)
class Credential:
    """A principal and its secret."""

    principal: str
    secret: str

    @property
    def auth(self) -> tuple[str, str]:
        """(principal, secret): what ``real_mesos`` and HTTP clients take for basic auth."""
        return (self.principal, self.secret)


def _new(principal: str) -> Credential:
    return Credential(principal, secrets.token_hex(16))


def acls(hub: str, operator: str, agent: str, spark: str) -> dict:
    """The ACL file (Mesos's ``ACLs`` message as JSON). The first matching rule decides; with
    ``permissive: false`` a request no rule matches is refused."""
    anyone = {"type": "ANY"}

    def only(*names: str) -> dict:
        return {"values": list(names)}

    return {
        "permissive": False,
        "register_frameworks": [
            {"principals": only(hub), "roles": only(*HUB_ROLES)},
            {"principals": only(spark), "roles": only("spark")},
        ],
        "run_tasks": [
            # No principal may run a task as root; then the frameworks may run as anyone else.
            {"principals": {"type": "NONE"}, "users": only("root")},
            {"principals": only(hub, spark), "users": anyone},
        ],
        "teardown_frameworks": [
            {"principals": only(operator), "framework_principals": anyone},
            # The hub tears down notebooks' Spark frameworks (a stopped or vanished notebook's
            # driver leaves its framework registered), and nothing else: not its own.
            {"principals": only(hub), "framework_principals": only(spark)},
        ],
        "view_frameworks": [{"principals": only(operator, hub), "users": anyone}],
        "view_tasks": [{"principals": only(operator, hub), "users": anyone}],
        "view_executors": [{"principals": only(operator), "users": anyone}],
        "view_roles": [{"principals": only(operator, hub), "roles": anyone}],
        "view_flags": [{"principals": only(operator, hub), "flags": anyone}],
        "access_sandboxes": [{"principals": only(operator), "users": anyone}],
        "access_mesos_logs": [{"principals": only(operator), "logs": anyone}],
        "get_endpoints": [{"principals": only(operator), "paths": anyone}],
        "register_agents": [{"principals": only(agent), "agents": anyone}],
        # An agent with statically reserved resources (``cpus(spark):4``) registers only if its
        # principal may reserve them; the operator makes dynamic reservations.
        "reserve_resources": [{"principals": only(agent, operator), "roles": anyone}],
        "unreserve_resources": [{"principals": only(operator), "reserver_principals": anyone}],
    }


@dataclass(frozen=True)
class Security:
    """The secrets and files of one secure cluster, under ``directory`` (mode 0700)."""

    directory: Path
    hub: Credential
    operator: Credential
    agent: Credential
    spark: Credential
    intruder: Credential
    zk: Credential  # the masters' ZooKeeper digest user

    @classmethod
    def create(cls, directory: Path) -> Security:
        """New random secrets, and their files written under ``directory``."""
        security = cls(
            Path(directory),
            hub=_new("hub"),
            operator=_new("operator"),
            agent=_new("agent"),
            spark=_new("spark"),
            intruder=_new("intruder"),
            zk=_new("mesos"),
        )
        security.write()
        return security

    # ---- files
    @property
    def credentials_file(self) -> Path:
        return self.directory / "credentials.json"

    @property
    def agent_http_credentials_file(self) -> Path:
        return self.directory / "agent-http-credentials.json"

    @property
    def agent_credential_file(self) -> Path:
        return self.directory / "agent-credential.json"

    @property
    def acls_file(self) -> Path:
        return self.directory / "acls.json"

    @property
    def zk_file(self) -> Path:
        """The masters' ``--zk`` value, given as ``file://`` so the digest is not on ``ps``."""
        return self.directory / "zk-url"

    def secret_file(self, credential: Credential) -> Path:
        """A file holding only ``credential``'s secret (``MesosSpawner.secret_file``)."""
        return self.directory / f"{credential.principal}.secret"

    def write(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        frameworks = [self.hub, self.operator, self.agent, self.spark, self.intruder]
        _write(self.credentials_file, {"credentials": [_entry(c) for c in frameworks]})
        _write(self.agent_http_credentials_file, {"credentials": [_entry(self.operator)]})
        _write(self.agent_credential_file, _entry(self.agent))
        _write(
            self.acls_file,
            acls(
                self.hub.principal,
                self.operator.principal,
                self.agent.principal,
                self.spark.principal,
            ),
        )
        for credential in (self.hub, self.spark):
            _write_text(self.secret_file(credential), credential.secret + "\n")

    # ---- flags
    def master_flags(self) -> tuple[str, ...]:
        return (
            "--authenticate_frameworks",
            "--authenticate_http_frameworks",
            "--http_framework_authenticators=basic",
            "--authenticate_http_readonly",
            "--authenticate_http_readwrite",
            "--authenticate_agents",
            f"--credentials=file://{self.credentials_file}",
            f"--acls=file://{self.acls_file}",
        )

    def agent_flags(self) -> tuple[str, ...]:
        return (
            f"--credential=file://{self.agent_credential_file}",
            "--authenticate_http_readonly",
            "--authenticate_http_readwrite",
            f"--http_credentials=file://{self.agent_http_credentials_file}",
            f"--acls=file://{self.acls_file}",
        )

    def zk_url(self, url: str) -> str:
        """``zk://host/path`` with the masters' digest: ``zk://user:pass@host/path``."""
        if not url.startswith("zk://"):
            raise ValueError(f"not a zk:// URL: {url!r}")
        return f"zk://{self.zk.principal}:{self.zk.secret}@{url[len('zk://') :]}"

    def master_zk_flag(self, url: str) -> str:
        """``file://`` of a file holding the digest URL: what a master's ``--zk`` is given."""
        _write_text(self.zk_file, self.zk_url(url) + "\n")
        return f"file://{self.zk_file}"


def _entry(credential: Credential) -> dict:
    return {"principal": credential.principal, "secret": credential.secret}


def _write(path: Path, data: dict) -> None:
    _write_text(path, json.dumps(data, indent=2) + "\n")


def _write_text(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
