"""The hub's check of the Mesos cluster at start: read it, judge it (``security_check``), and
stop the hub when it is not safe for notebooks.

``check_config(c)``, last in ``jupyterhub_config.py``, runs it while JupyterHub loads its
config: nothing is served yet, so a short blocking wait (``cluster_check_timeout``) holds up
nobody, and an exception there stops the hub before it listens. It reads the leading master's
``/master/flags`` with the hub's own credentials (as every master read is made) and one agent's
``/state`` with none: an agent must refuse it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging

from .mesos import credentials
from .mesos.detector import make_detector, redact
from .mesos.http import (
    MesosError,
    Target,
    basic_auth_header,
    describe_error,
    get_json,
    load_tls_context,
)
from .security_check import Answers, Finding, assess, refuses, report

log = logging.getLogger("mesosspawner.start_check")


class InsecureCluster(RuntimeError):
    """The cluster is open to its notebooks (or could not be checked) and the admin did not
    allow that: the hub does not start."""


async def read_cluster(
    master: str,
    *,
    principal: str | None,
    secret: str | None,
    ca_file: str | None = None,
    timeout: float = 15.0,
    framework_user: str | None = None,
) -> Answers:
    """What the check needs from the cluster; every failure becomes part of the answers."""
    answers = await _read(master, principal, secret, ca_file, timeout)
    return dataclasses.replace(answers, framework_user=framework_user)


async def _read(
    master: str, principal: str | None, secret: str | None, ca_file: str | None, timeout: float
) -> Answers:
    shown = redact(master)
    scheme = "https" if ca_file else "http"
    auth = basic_auth_header(principal, secret)
    answers = Answers(shown, principal=principal)
    try:
        async with asyncio.timeout(timeout):
            tls = await load_tls_context(ca_file) if ca_file else None
            candidates = await _leaders(master, scheme, timeout)
            flags, code, error = await _flags(candidates, tls, auth, timeout)
            answers = Answers(
                shown, flags=flags, flags_code=code, flags_error=error, principal=principal
            )
            if flags is None:
                return answers
            agent, agent_code, agent_error, agents_error = await _one_agent(
                Target.parse(candidates[0]), tls, auth, timeout
            )
            return Answers(
                shown,
                flags=flags,
                agent=agent,
                agent_code=agent_code,
                agent_error=agent_error,
                agents_error=agents_error,
                principal=principal,
            )
    except TimeoutError:
        error = f"no answer within cluster_check_timeout = {timeout:g} s"
        if answers.flags is None:
            return Answers(shown, flags_error=error, principal=principal)
        return Answers(shown, flags=answers.flags, agents_error=error, principal=principal)
    except Exception as e:  # noqa: BLE001 - any failure to read means: not checked
        return Answers(shown, flags_error=describe_error(e), principal=principal)


async def _leaders(master: str, scheme: str, timeout: float) -> list[str]:
    """The masters to ask, leader first: the static list, or ZooKeeper's leader."""
    # kazoo's connect blocks a thread for up to zk_timeout, even once we stop waiting.
    detector = make_detector(master, scheme=scheme, zk_timeout=timeout)
    try:
        await detector.start()
        while not detector.candidates():
            detector.changed.clear()
            await detector.changed.wait()
        return detector.candidates()
    finally:
        await detector.stop()


async def _flags(
    candidates: list[str], tls, auth: bytes, timeout: float
) -> tuple[dict | None, int | None, str | None]:
    """The first answering master's flags (a master answers with its own, leading or not)."""
    error: tuple[int | None, str] = (None, "no master answered")
    for url in candidates:
        target = Target.parse(url)
        try:
            data = await get_json(
                target, "/master/flags", ssl_context=tls, auth_header=auth, timeout=timeout
            )
        except MesosError as e:
            if e.code is not None:  # the master answered: its refusal is the answer
                return None, e.code, f"GET {target.url}/master/flags answered {e.code}"
            error = (None, str(e))
            continue
        if data is None:
            return None, 404, f"GET {target.url}/master/flags answered 404"
        flags = data.get("flags") if isinstance(data, dict) else None
        if not isinstance(flags, dict):
            return None, 200, f"GET {target.url}/master/flags: no flags object in the answer"
        return flags, 200, None
    return None, error[0], error[1]


async def _one_agent(
    master: Target, tls, auth: bytes, timeout: float
) -> tuple[str | None, int | None, str | None, str | None]:
    """(agent, status of its anonymous /state, why unreachable, why no agent was tried)."""
    try:
        data = await get_json(
            master, "/master/slaves", ssl_context=tls, auth_header=auth, timeout=timeout
        )
    except MesosError as e:
        return None, None, None, f"the master's agent list could not be read: {e}"
    slaves = (data or {}).get("slaves") or [] if isinstance(data, dict) else []
    for slave in slaves:
        if not slave.get("active", True):
            continue
        pid = str(slave.get("pid", ""))
        address = pid.rsplit("@", 1)[-1] if "@" in pid else ""
        if not address:
            continue
        name = f"{slave.get('hostname', '?')} ({address})"
        target = Target.parse(f"{master.scheme}://{address}")
        try:
            await get_json(
                target, "/state", ssl_context=tls, auth_header=b"", timeout=min(timeout, 5.0)
            )
        except MesosError as e:
            if e.code is None:
                return name, None, str(e), None
            return name, e.code, None, None
        except TimeoutError:
            return name, None, "no answer within 5 s", None
        return name, 200, None, None
    return None, None, None, None


def _run(coro):
    """Run ``coro`` to completion from plain code, even inside a running event loop (JupyterHub
    loads its config from within one): on a loop of its own, in a thread."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="start-check") as pool:
        return pool.submit(asyncio.run, coro).result()


def check_cluster(traits, logger: logging.Logger | None = None) -> list[Finding]:
    """Check the cluster ``traits`` (a MesosSpawner) points at; log what was found.

    Raises InsecureCluster when it is open (or unreadable) and ``allow_insecure_cluster`` is
    False, and CredentialError when the hub's own credentials are unusable.
    """
    logger = logger or log
    principal, secret = credentials.resolve(traits.principal, traits.secret, traits.secret_file)
    if traits.secret_file and credentials.readable_by_others(traits.secret_file):
        logger.warning(
            "secret_file %s is readable by every user on this host: chmod 600 it",
            traits.secret_file,
        )
    answers = _run(
        read_cluster(
            traits.mesos_master,
            principal=principal,
            secret=secret,
            ca_file=traits.mesos_ca_file,
            timeout=traits.cluster_check_timeout,
            framework_user=traits.framework_user,
        )
    )
    findings = assess(answers)
    allowed = bool(traits.allow_insecure_cluster)
    text = report(findings, answers.master, allowed=allowed)
    if refuses(findings) and not allowed:
        logger.error("%s", text)
        # The findings are in the log line above; the traceback repeats only the gist.
        raise InsecureCluster(
            f"{text.splitlines()[0].rstrip(':')}: see the error logged above "
            "(c.MesosSpawner.allow_insecure_cluster = True starts the hub anyway)"
        )
    if findings:
        logger.warning("%s", text)
    else:
        logger.info(
            "The Mesos cluster at %s authenticates frameworks, operators and agents and has "
            "ACLs; agent %s refuses anonymous readers",
            answers.master,
            answers.agent,
        )
    return findings
