"""PURE: is this Mesos cluster safe to run notebooks on? Findings from what the master and one
agent answered.

The rules, each a way a notebook (any process on an agent, on the hub's network) takes the
cluster over when the flag is missing, and what to set:

- ``--authenticate_http_frameworks`` (with ``--http_framework_authenticators=basic``) and
  ``--authenticate_frameworks``: otherwise anyone registers a framework and launches tasks, or
  SUBSCRIBEs as the hub's framework (its id is in ``/master/state``).
- ``--authenticate_http_readwrite``: otherwise anyone tears the hub's framework down
  (``/master/teardown``): every notebook dies.
- ``--authenticate_http_readonly``: otherwise ``/master/state`` shows framework ids and tasks.
- ``--authenticate_agents``: otherwise any process registers as an agent and is sent notebooks,
  tokens included.
- ``--acls``: otherwise any principal registers any role, runs tasks as root and tears
  frameworks down. A file without ``run_tasks`` rules lets every principal run tasks as root.
- ``--zk=zk://user:pass@...`` (or ``file://`` of a file holding it): otherwise the masters'
  znodes are open and anyone replaces the leader znode, so schedulers follow a fake master.
- every agent's ``--authenticate_http_readonly`` / ``--authenticate_http_readwrite``: otherwise
  its ``/state`` gives every task's environment (notebook tokens) and ``/files/download`` every
  sandbox file to anyone.

A finding is ``insecure`` (the hub refuses to start unless ``allow_insecure_cluster``) or
``advice`` (logged; e.g. a ZooKeeper password inline in ``--zk``, shown by ``/master/flags``
and ``ps``). What could not be read is ``unchecked``: the hub cannot vouch for the cluster, so
it refuses as for ``insecure``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

INSECURE = "insecure"
UNCHECKED = "unchecked"
ADVICE = "advice"

GUIDE = 'docs/admin-guide.md, "Hardening a real cluster"'


@dataclass(frozen=True)
class Finding:
    severity: str  # INSECURE, UNCHECKED or ADVICE
    what: str  # what is open, in a person's words
    fix: str  # the flags (or settings) that close it

    def __str__(self) -> str:
        return f"{self.what}. Fix: {self.fix}"


@dataclass(frozen=True)
class Answers:
    """What the start check read. ``flags``: the leading master's ``/master/flags`` ``flags``
    object (None if unread, ``flags_error`` says why, ``flags_code`` its HTTP status if any).
    ``agent``: the agent tried (``hostname (ip:port)``, None when none is registered or the
    agent list could not be read, ``agents_error`` says why) and ``agent_code``, the status its
    ``/state`` answered without credentials (None if unreachable: ``agent_error``)."""

    master: str
    flags: dict | None = None
    flags_code: int | None = None
    flags_error: str | None = None
    agent: str | None = None
    agent_code: int | None = None
    agent_error: str | None = None
    agents_error: str | None = None
    principal: str | None = None  # the hub's, as configured
    framework_user: str | None = None  # FrameworkInfo.user, as configured


def _true(flags: dict, name: str) -> bool:
    return str(flags.get(name, "false")).strip().lower() == "true"


def assess(answers: Answers) -> list[Finding]:
    """Every finding, most serious first."""
    findings = _master_findings(answers) + _agent_findings(answers)
    order = {INSECURE: 0, UNCHECKED: 1, ADVICE: 2}
    return sorted(findings, key=lambda f: order[f.severity])


def _master_findings(a: Answers) -> list[Finding]:
    if a.flags is None:
        return [_unreadable_flags(a)]
    flags = a.flags
    out = []
    if not _true(flags, "authenticate_http_frameworks"):
        out.append(
            Finding(
                INSECURE,
                "the master lets HTTP frameworks (this hub's kind) register without "
                "authentication: anyone can register a framework and launch tasks, or subscribe "
                "as the hub's framework",
                "on every master --authenticate_http_frameworks "
                "--http_framework_authenticators=basic --credentials=file://...",
            )
        )
    if not _true(flags, "authenticate_frameworks"):
        out.append(
            Finding(
                INSECURE,
                "the master lets driver-based frameworks (Spark's libmesos) register without "
                "authentication",
                "on every master --authenticate_frameworks --credentials=file://...",
            )
        )
    if not _true(flags, "authenticate_http_readwrite"):
        out.append(
            Finding(
                INSECURE,
                "the master's operator endpoints take anonymous callers: anyone can tear "
                "down the hub's framework (/master/teardown), killing every notebook",
                "on every master --authenticate_http_readwrite",
            )
        )
    if not _true(flags, "authenticate_http_readonly"):
        out.append(
            Finding(
                INSECURE,
                "the master's /master/state answers anonymous callers (framework ids, tasks)",
                "on every master --authenticate_http_readonly",
            )
        )
    if not _true(flags, "authenticate_agents"):
        out.append(
            Finding(
                INSECURE,
                "the master accepts agents without authentication: any process can register "
                "as an agent and be sent notebooks, tokens included",
                "on every master --authenticate_agents; on every agent --credential=file://...",
            )
        )
    acls = str(flags.get("acls", "")).strip()
    if not acls:
        out.append(
            Finding(
                INSECURE,
                "the master has no ACLs: any principal may register any role, run tasks as "
                "root and tear frameworks down",
                "on every master and agent --acls=file://acls.json "
                "(register_frameworks, run_tasks refusing root, teardown_frameworks; "
                + GUIDE
                + ")",
            )
        )
    elif "run_tasks" not in acls:
        out.append(
            Finding(
                INSECURE,
                "the master's ACLs have no run_tasks rules: every principal may run tasks as root",
                'a first run_tasks rule {"principals": {"type": "NONE"}, '
                '"users": {"values": ["root"]}} in --acls',
            )
        )
    out += _zk_findings(str(flags.get("zk", "")).strip())
    if acls and "run_tasks" in acls and a.framework_user == "root":
        # Mesos authorizes a task as command.user, else FrameworkInfo.user: Docker notebooks
        # carry no command.user (the Docker containerizer ignores it).
        out.append(
            Finding(
                ADVICE,
                "the hub's framework_user is root: Mesos authorizes Docker notebooks (they carry "
                "no command.user) as FrameworkInfo.user, so run_tasks rules refusing root "
                "refuse them",
                "c.MesosSpawner.framework_user = an unprivileged account that exists on the "
                "agents (e.g. 'nobody')",
            )
        )
    return out


def _zk_findings(zk: str) -> list[Finding]:
    if not zk.startswith("zk://"):
        return []  # standalone, or file:// (its content is not shown)
    netloc = urlsplit(zk).netloc
    if "@" not in netloc:
        return [
            Finding(
                INSECURE,
                "the masters write ZooKeeper without authentication: their znodes are open, and "
                "anyone who reaches ZooKeeper can replace the leader znode so schedulers and "
                "agents follow a fake master",
                "on every master --zk=file://<a file holding zk://user:password@hosts/path> "
                "(Mesos then creates its znodes readable by all, writable only by that user)",
            )
        ]
    return [
        Finding(
            ADVICE,
            "the masters' ZooKeeper password is in their --zk flag: /master/flags and ps show it",
            "--zk=file://<a file, mode 0600, holding the zk:// URL>",
        )
    ]


def _unreadable_flags(a: Answers) -> Finding:
    code, why = a.flags_code, a.flags_error or "no answer"
    if code == 401:
        fix = (
            "set c.MesosSpawner.principal and secret_file to a principal in the masters' "
            "--credentials"
            if not a.principal
            else f"check secret_file: the masters' --credentials must list principal "
            f"{a.principal!r} with that secret"
        )
        what = f"the master refused the hub's credentials for /master/flags ({why})"
    elif code == 403:
        what = f"principal {a.principal!r} may not read /master/flags ({why})"
        fix = (
            f'a view_flags ACL for {a.principal!r}: {{"principals": {{"values": '
            f'["{a.principal}"]}}, "flags": {{"type": "ANY"}}}}'
        )
    elif code == 404:
        what = f"the master does not serve /master/flags ({why})"
        fix = "point mesos_master at a Mesos 1.x master"
    else:
        what = f"the master could not be read ({why})"
        fix = "start the hub when the master answers, or check mesos_master"
    return Finding(UNCHECKED, f"cannot check the cluster: {what}", fix)


def _agent_findings(a: Answers) -> list[Finding]:
    if a.flags is None:
        return []  # the master could not be read: no agent was looked for
    if a.agent is None:
        why = a.agents_error or "no agent is registered yet"
        return [Finding(ADVICE, f"no agent was checked ({why})", "nothing, if agents follow")]
    if a.agent_code is None:
        return [
            Finding(
                ADVICE,
                f"agent {a.agent} could not be reached from the hub ({a.agent_error}); its "
                "authentication was not checked",
                "make sure every agent runs with --authenticate_http_readonly",
            )
        ]
    if a.agent_code == 200:
        return [
            Finding(
                INSECURE,
                f"agent {a.agent} answers /state without credentials: it shows every task's "
                "environment (notebook tokens) and serves every sandbox file to anyone",
                "on every agent --authenticate_http_readonly --authenticate_http_readwrite "
                "--http_credentials=file://... --acls=file://acls.json",
            )
        ]
    return []


def refuses(findings: list[Finding]) -> bool:
    """Whether these findings stop the hub (unless ``allow_insecure_cluster``)."""
    return any(f.severity in (INSECURE, UNCHECKED) for f in findings)


def report(findings: list[Finding], master: str, *, allowed: bool) -> str:
    """The log text: each finding with its fix, then what the hub does about it."""
    serious = [f for f in findings if f.severity != ADVICE]
    advice = [f for f in findings if f.severity == ADVICE]
    lines = []
    if any(f.severity == INSECURE for f in serious):
        lines.append(f"The Mesos cluster at {master} is not safe for notebooks:")
    elif serious:
        lines.append(f"The Mesos cluster at {master} could not be checked:")
    lines += [f"  - {f}" for f in serious]
    if advice:
        lines.append(f"Notes on the Mesos cluster at {master}:")
        lines += [f"  - {f}" for f in advice]
    if serious:
        if allowed:
            lines.append("Starting anyway: c.MesosSpawner.allow_insecure_cluster = True.")
        else:
            lines.append(
                f"The hub does not start. Close these ({GUIDE}), or set "
                "c.MesosSpawner.allow_insecure_cluster = True to start anyway."
            )
    return "\n".join(lines)
