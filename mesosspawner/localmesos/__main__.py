"""``mesosspawner-localmesos``: run a master (default cluster or ``--config``), or ``agent ...``.

Master: prints exactly one line ``localmesos master listening on http://127.0.0.1:PORT`` once it
serves. Agent: ``mesosspawner-localmesos agent --master URL|zk://... --hostname H --resources R``.
A bad cluster file, resource or attribute string ends the program with one line on stderr and
exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import tempfile

from .config import ClusterConfigError, check_agents, default_cluster, load, parse_agent

PROG = "mesosspawner-localmesos"


def master_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="A single-process Mesos master and agents speaking the v1 scheduler API. "
        f"Run `{PROG} agent --help` for a separate agent process.",
    )
    p.add_argument("--config", help="cluster file (TOML); default: plain, GPU and spark agents")
    p.add_argument("--port", type=int, help="port to listen on (0 = any free port; default 5050)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--zk", help="zk://host:port/path: publish json.info_ znodes, elect a leader")
    p.add_argument("--heartbeat-interval", type=float, default=15.0, help="seconds (default 15)")
    p.add_argument(
        "--offer-timeout", type=float, default=None, help="rescind offers after N s (default off)"
    )
    p.add_argument(
        "--agent-unreachable-timeout",
        type=float,
        default=75.0,
        help="seconds before a disconnected agent's tasks are LOST/UNREACHABLE (default 75)",
    )
    p.add_argument(
        "--agent-reregister-timeout",
        type=float,
        default=600.0,
        help="after a failover, seconds known agents have to re-register (default 600)",
    )
    p.add_argument(
        "--status-retry-interval",
        type=float,
        default=10.0,
        help="first resend interval of unacknowledged status updates (default 10 s)",
    )
    p.add_argument(
        "--zk-session-timeout",
        type=float,
        default=10.0,
        help="ZooKeeper session timeout: how long a crashed leader's znode lives on (default 10 s)",
    )
    p.add_argument("--work-dir", help="where task sandboxes go (default: a temporary directory)")
    p.add_argument("--no-agents", action="store_true", help="start the master without its agents")
    p.add_argument(
        "--allow-root-tasks",
        action="store_true",
        help="run tasks that would run as root (by default they get TASK_ERROR: anyone who can"
        " reach localmesos could otherwise run commands as root when it runs as root)",
    )
    p.add_argument(
        "--task-users",
        default="",
        help="comma list of user name patterns tasks may run as (e.g. 'demo-*'); default: any"
        " user but root",
    )
    p.add_argument("--log-level", default="WARNING")
    return p


def agent_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{PROG} agent", description="A separate localmesos agent.")
    p.add_argument("--master", required=True, help="http://host:port of a master, or zk://...")
    p.add_argument("--hostname", required=True)
    p.add_argument("--resources", required=True, help="mesos-agent --resources syntax")
    p.add_argument("--attributes", default="", help="mesos-agent --attributes syntax")
    p.add_argument(
        "--isolation",
        default="",
        help="as mesos-agent --isolation (filesystem/linux: mount command tasks' host volumes)",
    )
    p.add_argument(
        "--image-providers",
        default="",
        help="as mesos-agent --image_providers; docker runs Mesos-containerizer images "
        "(needs --isolation=filesystem/linux,docker/runtime)",
    )
    p.add_argument(
        "--docker-config",
        help="as mesos-agent --docker_config: absolute path of a Docker config.json whose "
        "registry logins Docker images are pulled with",
    )
    p.add_argument("--port", type=int, default=5051, help="port shown in offers (default 5051)")
    p.add_argument("--work-dir", help="where task sandboxes go (default: a temporary directory)")
    p.add_argument("--status-retry-interval", type=float, default=10.0)
    p.add_argument("--log-level", default="WARNING")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "agent":
            args = agent_parser().parse_args(argv[1:])
            logging.basicConfig(level=args.log_level.upper())
            agent_cfg = parse_agent(
                args.hostname,
                args.resources,
                args.attributes,
                source="command line",
                isolation=args.isolation,
                image_providers=args.image_providers,
                docker_config=args.docker_config,
            )
            return _run(_agent_main(args, agent_cfg))
        args = master_parser().parse_args(argv)
        logging.basicConfig(level=args.log_level.upper())
        config = load(args.config) if args.config else default_cluster()
        check_agents(config.agents, config.source)
        return _run(_master_main(args, config))
    except ClusterConfigError as e:
        print(f"{PROG}: {e}", file=sys.stderr, flush=True)
        return 2


def _run(coro) -> int:
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        return 0


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _master_main(args: argparse.Namespace, config) -> int:
    from .cluster import LocalCluster

    port = args.port if args.port is not None else config.port
    cluster = LocalCluster(
        config,
        port=port,
        host=args.host,
        zk=args.zk or config.zk,
        heartbeat_interval=args.heartbeat_interval,
        offer_timeout=args.offer_timeout,
        agent_unreachable_timeout=args.agent_unreachable_timeout,
        agent_reregister_timeout=args.agent_reregister_timeout,
        status_retry_interval=args.status_retry_interval,
        zk_session_timeout=args.zk_session_timeout,
        work_dir=args.work_dir,
        with_agents=not args.no_agents,
        allow_root_tasks=args.allow_root_tasks,
        task_users=tuple(p.strip() for p in args.task_users.split(",") if p.strip()),
    )
    try:
        await cluster.start()
    except OSError as e:
        print(
            f"{PROG}: cannot listen on {args.host}:{port}: {e.strerror}",
            file=sys.stderr,
            flush=True,
        )
        await cluster.stop()
        return 1
    print(f"localmesos master listening on {cluster.url}", flush=True)
    try:
        await _wait_for_signal()
    finally:
        await cluster.stop()
    return 0


async def _agent_main(args: argparse.Namespace, cfg) -> int:
    from .agent import LocalAgent
    from .remote_agent import AgentSession

    work_dir = args.work_dir
    if work_dir is None:
        work_dir = tempfile.mkdtemp(prefix=f"localmesos-agent-{cfg.hostname}-")
        os.chmod(work_dir, 0o755)  # tasks running as other users must reach their sandboxes
    agent = LocalAgent(
        cfg.hostname,
        cfg.resources,
        cfg.attributes,
        work_dir,
        port=args.port,
        status_retry_interval=args.status_retry_interval,
        containerization=cfg.containerization,
    )
    session = AgentSession(agent, args.master)
    session.start()
    try:
        await _wait_for_signal()
    finally:
        await session.stop()
        with contextlib.suppress(Exception):
            await agent.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
