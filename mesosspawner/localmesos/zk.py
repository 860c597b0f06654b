"""ZooKeeper: publish this master as a ``json.info_<seq>`` znode and follow who leads.

As Mesos does: every master creates an ephemeral sequential znode holding its MasterInfo JSON
under the ``zk://`` path; the lowest sequence number leads. Kazoo is blocking, so every kazoo call
runs in a worker thread and results are handed to the event loop with ``call_soon_threadsafe``.

``zk://user:pass@host/path``, as Mesos's ``zookeeper::GroupProcess`` does it: the master
authenticates with the ``digest`` scheme and creates every znode (the path, its parents, its
own ``json.info_``, the agent registry) with ``EVERYONE_READ_CREATOR_ALL``: anyone may read
(schedulers and agents find the leader without the password), only the digest's holder may
create, change or delete. Without a digest, znodes are open to all (``ZOO_OPEN_ACL_UNSAFE``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

log = logging.getLogger("mesosspawner.localmesos.zk")

PREFIX = "json.info_"


def parse_zk_url(url: str) -> tuple[str, str]:
    """``zk://h1:2181,h2:2181/mesos`` → (``"h1:2181,h2:2181"``, ``"/mesos"``)."""
    if not url.startswith("zk://"):
        raise ValueError(f"ZooKeeper URL {url!r} must start with zk://")
    parts = urlsplit(url)
    hosts = parts.netloc.rsplit("@", 1)[-1]
    path = parts.path.rstrip("/") or "/mesos"
    if not hosts:
        raise ValueError(f"ZooKeeper URL {url!r} names no host (zk://host:port/path)")
    return hosts, path


def zk_auth(url: str) -> str | None:
    """``zk://user:pass@h/path`` → ``"user:pass"`` (the digest credentials), or None."""
    netloc = urlsplit(url).netloc
    return netloc.rsplit("@", 1)[0] if "@" in netloc else None


def znode_acl(auth: str | None) -> list | None:
    """The ACL Mesos gives its znodes: with a digest, EVERYONE_READ_CREATOR_ALL (world may
    read, the authenticated creator may do everything); without one, kazoo's default (open)."""
    if auth is None:
        return None
    from kazoo.security import CREATOR_ALL_ACL, READ_ACL_UNSAFE

    return [*READ_ACL_UNSAFE, *CREATOR_ALL_ACL]


def leader_of(children: list[str]) -> str | None:
    """The leading znode: lowest sequence among ``json.info_*`` children."""
    mine = [c for c in children if c.startswith(PREFIX)]
    return min(mine, key=lambda c: c[len(PREFIX) :]) if mine else None


class LeaderWatch:
    """Watches the path; ``on_change(leader_info | None, leader_znode | None)`` on the loop."""

    def __init__(self, url: str, session_timeout: float = 10.0) -> None:
        self.hosts, self.path = parse_zk_url(url)
        self.auth = zk_auth(url)
        # mesos-master --zk_session_timeout (10 s): how long a crashed master's znode outlives it.
        self.session_timeout = session_timeout
        self.client = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.on_change: Callable[[dict | None, str | None], None] | None = None
        self.leader: dict | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._start_sync)

    def _start_sync(self) -> None:
        from kazoo.client import KazooClient

        self.client = KazooClient(
            hosts=self.hosts,
            timeout=self.session_timeout,
            auth_data=[("digest", self.auth)] if self.auth else None,
            default_acl=znode_acl(self.auth),
        )
        self.client.start(timeout=15)
        self.client.ensure_path(self.path)
        self._before_watch()
        self.client.ChildrenWatch(self.path, self._children_changed)

    def _before_watch(self) -> None:
        """Hook for the contender: create its znode before watching."""

    def _children_changed(self, children: list[str]) -> None:
        znode = leader_of(children)
        log.debug("children of %s: %s (leader %s)", self.path, children, znode)
        info = None
        if znode is not None:
            try:
                data, _ = self.client.get(f"{self.path}/{znode}")
                info = json.loads(data.decode())
            except Exception:  # noqa: BLE001 - node vanished between list and get: next watch fires
                log.debug("leader znode %s vanished", znode)
                info = None
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._deliver, info, znode)

    def _deliver(self, info: dict | None, znode: str | None) -> None:
        self.leader = info
        self._changed.set()
        if self.on_change is not None:
            self.on_change(info, znode)

    async def wait_leader(self) -> dict:
        """The current leader's MasterInfo, waiting until there is one."""
        while self.leader is None:
            self._changed.clear()
            await self._changed.wait()
        return self.leader

    async def stop(self) -> None:
        if self.client is not None:
            client = self.client
            self.client = None
            await asyncio.to_thread(_close, client)


def _close(client) -> None:
    with contextlib.suppress(Exception):
        client.stop()
    with contextlib.suppress(Exception):
        client.close()


class MasterContender(LeaderWatch):
    """Publishes this master's MasterInfo and reports ``on_change(leader_info, am_leader)``."""

    def __init__(self, url: str, master_info: dict, session_timeout: float = 10.0) -> None:
        super().__init__(url, session_timeout)
        self.master_info = master_info
        self.znode: str | None = None
        self.on_change: Callable[[dict | None, bool], None] | None = None  # type: ignore[assignment]

    def _before_watch(self) -> None:
        created = self.client.create(
            f"{self.path}/{PREFIX}",
            json.dumps(self.master_info).encode(),
            ephemeral=True,
            sequence=True,
        )
        self.znode = created.rsplit("/", 1)[-1]
        log.info("published %s", created)

    def _deliver(self, info: dict | None, znode: str | None) -> None:
        self.leader = info
        self._changed.set()
        if self.on_change is not None:
            self.on_change(info, znode is not None and znode == self.znode)


class ZkRegistry:
    """The agents a master admitted, kept in ZooKeeper so the next leader knows them.

    Mesos keeps this in its replicated registry: after a failover the new leader waits for known
    agents to re-register (and answers no reconciliation for their tasks meanwhile). Nodes:
    ``<path>/localmesos.registry/<agent_id>`` holding ``admitted`` or ``unreachable``. Writes run
    on one worker thread, in order, off the event loop.
    """

    def __init__(self, client, path: str) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.client = client
        self.root = f"{path}/localmesos.registry"
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zk-registry")

    def load(self) -> dict[str, str]:
        """Blocking: every recorded agent and its state (call it in a thread)."""
        self.client.ensure_path(self.root)
        out = {}
        for child in self.client.get_children(self.root):
            with contextlib.suppress(Exception):
                data, _ = self.client.get(f"{self.root}/{child}")
                out[child] = data.decode() or "admitted"
        return out

    def _set(self, agent_id: str, state: str) -> None:
        node = f"{self.root}/{agent_id}"
        try:
            if self.client.exists(node):
                self.client.set(node, state.encode())
            else:
                self.client.create(node, state.encode(), makepath=True)
        except Exception:  # noqa: BLE001 - the registry is advisory; a lost write only means
            log.warning("could not record agent %s as %s", agent_id, state, exc_info=True)

    def admit(self, agent_id: str) -> None:
        self._writer.submit(self._set, agent_id, "admitted")

    def mark_unreachable(self, agent_id: str) -> None:
        self._writer.submit(self._set, agent_id, "unreachable")

    def close(self) -> None:
        self._writer.shutdown(wait=True)
