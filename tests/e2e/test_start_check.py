"""The hub checks the Mesos cluster at start (``check_config(c)``, last in its config): a real
JupyterHub refuses to start on a cluster that lets notebooks take it over, naming the flags to
set, unless ``allow_insecure_cluster``; on a secure real cluster it starts."""

from __future__ import annotations

import asyncio
import time

from tests.services.cluster import AgentSpec, port_block
from tests.services.e2e import mesos_config, secure_mesos_config

_BASE = port_block()
AGENTS = (AgentSpec("cpu-1", f"cpus:1;mem:1024;ports:[{_BASE}-{_BASE + 9}]"),)
CHECK = """
from mesosspawner import check_config
check_config(c)
"""


async def refused(hub, timeout: float = 60) -> str:
    """Start ``hub`` and wait for it to exit; its log, after asserting it exited non-zero."""
    hub.start()
    deadline = time.monotonic() + timeout
    while hub.proc.poll() is None:
        if time.monotonic() > deadline:
            raise hub.fail(f"the hub did not stop within {timeout} s")
        await asyncio.sleep(0.2)
    assert hub.proc.returncode != 0, hub.log_text()[-3000:]
    return hub.log_text()


async def test_start_check_refuses_an_insecure_cluster_unless_allowed(
    mesos_kind, clusters, hub_factory, homes
):
    cluster = clusters(mesos_kind, AGENTS)
    log = await refused(hub_factory(mesos_config(cluster.url, homes, CHECK)))
    assert f"The Mesos cluster at {cluster.url} is not safe for notebooks" in log
    for flag in (
        "--authenticate_http_frameworks",
        "--authenticate_frameworks",
        "--authenticate_http_readwrite",
        "--authenticate_http_readonly",
        "--authenticate_agents",
        "--acls",
    ):
        assert flag in log, flag
    assert "The hub does not start" in log and "allow_insecure_cluster = True" in log
    if mesos_kind == "real":
        # A real agent answers /state to anyone: named, with the agent's flags.
        assert "agent cpu-1 (127.0.0.1:" in log and "answers /state without credentials" in log
        assert "--http_credentials" in log
    assert await cluster.task_states() == {}

    allowed = hub_factory(
        mesos_config(cluster.url, homes, "c.MesosSpawner.allow_insecure_cluster = True" + CHECK)
    )
    await allowed.launch()
    assert "Starting anyway: c.MesosSpawner.allow_insecure_cluster = True" in allowed.log_text()


async def test_start_check_accepts_a_secure_cluster(real_mesos_home, clusters, hub_factory, homes):
    cluster = clusters("real", AGENTS, secure=True)
    hub = await hub_factory(secure_mesos_config(cluster, homes, CHECK)).launch()
    log = hub.log_text()
    assert "authenticates frameworks, operators and agents and has ACLs" in log
    assert "agent cpu-1 (127.0.0.1:" in log and "refuses anonymous readers" in log
    assert "not safe" not in log and cluster.security.hub.secret not in log

    # The hub as root with FrameworkInfo.user root: it starts, and says what that refuses.
    config = secure_mesos_config(cluster, homes, 'c.MesosSpawner.framework_user = "root"\n' + CHECK)
    as_root = await hub_factory(config).launch()
    assert "framework_user is root" in as_root.log_text()


async def test_start_check_refuses_a_secure_master_whose_agent_answers_anyone(
    real_mesos_home, clusters, hub_factory, homes, tmp_path
):
    open_agents = ("--authenticate_http_readonly=false", "--authenticate_http_readwrite=false")
    cluster = clusters("real", AGENTS, secure=True, agent_flags=open_agents)
    log = await refused(hub_factory(secure_mesos_config(cluster, homes, CHECK)))
    assert "agent cpu-1 (127.0.0.1:" in log and "answers /state without credentials" in log
    # Only the agent is open: the master's flags are all set.
    assert "--authenticate_http_frameworks" not in log and "no ACLs" not in log

    # A wrong secret cannot read the master: the cluster is unchecked, and the hub says whose
    # credentials to fix, without showing the secret.
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("not-the-secret\n")
    wrong.chmod(0o600)
    config = secure_mesos_config(cluster, homes, CHECK, secret_file=str(wrong))
    log = await refused(hub_factory(config))
    assert "could not be checked" in log and "answered 401" in log
    assert "principal 'hub'" in log and "not-the-secret" not in log
