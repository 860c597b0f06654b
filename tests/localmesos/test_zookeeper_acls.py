"""ZooKeeper with a digest, on both masters and a real ZooKeeper: masters started with
``zk://user:pass@host/path`` create their znodes readable by all and writable only by that
user (Mesos's ``EVERYONE_READ_CREATOR_ALL``), so nobody without the digest can delete the
leader's znode or plant a lower-numbered one that schedulers and agents would follow. Each
refusal has its positive control: the digest's holder may do it, and so may anyone when the
masters run without a digest."""

from __future__ import annotations

import asyncio
import json

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError

from mesosspawner.mesos.detector import ZooKeeperDetector, leader_child, make_detector
from tests.services.cluster import AgentSpec, port_block

_BASE = port_block()
ONE = (AgentSpec("zk-agent-1", f"cpus:1;mem:512;ports:[{_BASE}-{_BASE + 9}]"),)
FAKE_MASTER = {"address": {"ip": "10.6.6.6", "port": 5050, "hostname": "evil"}, "hostname": "evil"}


def _kazoo(hosts: str, digest: str | None = None) -> KazooClient:
    client = KazooClient(hosts=hosts, auth_data=[("digest", digest)] if digest else None)
    client.start(15)
    return client


def _close(client: KazooClient) -> None:
    client.stop()
    client.close()


def _attempts(client: KazooClient, path: str) -> dict[str, str]:
    """What a client gets when it tries to take the leadership over: each attempt's result."""
    out = {}
    leader = leader_child(client.get_children(path))
    assert leader, f"no leader znode under {path}"
    out["read"] = json.loads(client.get(f"{path}/{leader}")[0])["address"]["ip"]

    def attempt(name, action):
        try:
            result = action()
        except NoAuthError:
            out[name] = "NoAuth"
        else:
            out[name] = "done"
            if name == "create" and result:
                client.delete(result)  # the control's own node, gone again

    fake = json.dumps(FAKE_MASTER).encode()
    # A contender of its own (next sequence number): leader as soon as the real ones are gone.
    attempt(
        "create",
        lambda: client.create(f"{path}/json.info_", fake, ephemeral=True, sequence=True),
    )
    attempt("set", lambda: client.set(f"{path}/{leader}", fake) and None)
    attempt("delete", lambda: client.delete(f"{path}/{leader}") or "deleted")
    return out


async def _children(hosts: str, path: str) -> list[str]:
    client = await asyncio.to_thread(_kazoo, hosts)
    try:
        return [f"{path}/{c}" for c in await asyncio.to_thread(client.get_children, path)]
    finally:
        await asyncio.to_thread(_close, client)


async def _acl(hosts: str, node: str) -> list[tuple[str, int]]:
    client = await asyncio.to_thread(_kazoo, hosts)
    try:
        acl, _ = await asyncio.to_thread(client.get_acls, node)
    finally:
        await asyncio.to_thread(_close, client)
    return sorted((a.id.scheme, a.perms) for a in acl)


async def _leader_found(url: str) -> str:
    detector = make_detector(url)
    assert isinstance(detector, ZooKeeperDetector)
    try:
        await detector.start()
        async with asyncio.timeout(15):
            while not detector.candidates():
                detector.changed.clear()
                await detector.changed.wait()
        return detector.candidates()[0]
    finally:
        await detector.stop()


async def test_without_the_digest_nobody_deletes_creates_or_changes_the_leader_znode(
    mesos_kind, clusters, zookeeper, unique_zk_path
):
    url = zookeeper.url(unique_zk_path)
    cluster = clusters(mesos_kind, ONE, zk=url, secure=True)
    digest = ":".join(cluster.security.zk.auth)
    leader_url = await cluster.leader_url()

    anonymous = await asyncio.to_thread(_kazoo, zookeeper.hosts)
    try:
        # "set" is tried before "delete", so a refused set leaves the znode for the delete.
        seen = await asyncio.to_thread(_attempts, anonymous, unique_zk_path)
    finally:
        await asyncio.to_thread(_close, anonymous)
    assert seen == {"read": "127.0.0.1", "create": "NoAuth", "set": "NoAuth", "delete": "NoAuth"}
    # Every znode of the masters (the path, json.info_, the replicated log's): anyone reads,
    # only the digest's user does anything else.
    for node in [unique_zk_path, *await _children(zookeeper.hosts, unique_zk_path)]:
        assert await _acl(zookeeper.hosts, node) == [("digest", 31), ("world", 1)], node
    # Reading stays open: the hub's detector finds the leader with the digest and without it.
    assert await _leader_found(cluster.url) == leader_url
    assert await _leader_found(url) == leader_url

    # Positive control: the digest's holder may create (and delete its own node again).
    holder = await asyncio.to_thread(_kazoo, zookeeper.hosts, digest)
    try:
        created = await asyncio.to_thread(
            holder.create, f"{unique_zk_path}/probe", b"x", ephemeral=True
        )
        await asyncio.to_thread(holder.delete, created)
    finally:
        await asyncio.to_thread(_close, holder)
    assert await cluster.leader_url() == leader_url  # nothing moved


async def test_without_a_digest_the_leader_znode_is_open_to_anyone(
    clusters, zookeeper, unique_zk_path
):
    """The control of the test above: masters without a digest leave their znodes open (what
    the hub's start check refuses), so the same attempts succeed."""
    cluster = clusters("localmesos", ONE, zk=zookeeper.url(unique_zk_path))
    await cluster.leader_url()
    anonymous = await asyncio.to_thread(_kazoo, zookeeper.hosts)
    try:
        acl, _ = await asyncio.to_thread(anonymous.get_acls, unique_zk_path)
        seen = await asyncio.to_thread(_attempts, anonymous, unique_zk_path)
    finally:
        await asyncio.to_thread(_close, anonymous)
    assert [a.id.scheme for a in acl] == ["world"] and acl[0].perms == 31  # ALL to anyone
    assert seen["create"] == seen["set"] == seen["delete"] == "done"


async def test_a_path_created_open_before_the_masters_stays_open(
    mesos_kind, clusters, zookeeper, unique_zk_path
):
    """Masters with a digest do not change the ACL of a path that exists already (Mesos
    ignores ZNODEEXISTS): their own znodes are closed, but anyone may delete them from the
    open path, so the admin guide says to start the masters on a path nobody made before."""
    client = await asyncio.to_thread(_kazoo, zookeeper.hosts)
    try:
        await asyncio.to_thread(client.ensure_path, unique_zk_path)
    finally:
        await asyncio.to_thread(_close, client)
    cluster = clusters(mesos_kind, ONE, zk=zookeeper.url(unique_zk_path), secure=True)
    await cluster.leader_url()
    assert await _acl(zookeeper.hosts, unique_zk_path) == [("world", 31)]
    anonymous = await asyncio.to_thread(_kazoo, zookeeper.hosts)
    try:
        seen = await asyncio.to_thread(_attempts, anonymous, unique_zk_path)
    finally:
        await asyncio.to_thread(_close, anonymous)
    assert seen["set"] == "NoAuth"  # the znode itself is closed...
    assert seen["create"] == seen["delete"] == "done"  # ...but its parent is not
