"""Leading-master detection: address parsing, and ZooKeeper through a real server."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from mesosspawner.mesos.detector import (
    DetectorError,
    StaticDetector,
    ZooKeeperDetector,
    leader_child,
    make_detector,
    master_info_url,
    normalize_url,
)
from mesosspawner.testing.net import free_port


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("host:5050", "http://host:5050"),
        ("http://host:5050/", "http://host:5050"),
        ("https://m.example:443", "https://m.example:443"),
        ("//10.0.0.1:5050", "http://10.0.0.1:5050"),
        ("http://proxy/mesos/", "http://proxy/mesos"),
    ],
)
def test_normalize_url(address, url):
    assert normalize_url(address) == url


@pytest.mark.parametrize("address", ["", "ftp://host:21", "http://:5050", "host:port"])
def test_normalize_url_rejects_nonsense_naming_it(address):
    with pytest.raises(DetectorError) as info:
        normalize_url(address)
    if address:
        assert repr(address) in str(info.value)


def test_a_comma_list_keeps_its_order():
    detector = make_detector("m2:5050, http://m1:5050,https://m3:5443")
    assert isinstance(detector, StaticDetector)
    assert detector.candidates() == ["http://m2:5050", "http://m1:5050", "https://m3:5443"]


def test_zk_urls_parse_hosts_path_and_credentials_without_leaking_them():
    detector = make_detector("zk://user:pw@h1:2181,h2:2181/mesos/prod")
    assert isinstance(detector, ZooKeeperDetector)
    assert detector.hosts == "h1:2181,h2:2181"
    assert detector.path == "/mesos/prod"
    assert "pw" not in detector.describe()
    with pytest.raises(DetectorError, match="needs hosts and a path"):
        make_detector("zk://h1:2181")
    with pytest.raises(DetectorError) as info:
        make_detector("zk://user:secret@h1:2181")
    assert "secret" not in str(info.value)


def test_leader_is_the_lowest_sequence_json_info_child():
    children = ["log_replicas", "json.info_0000000012", "info_0000000001", "json.info_0000000009"]
    assert leader_child(children) == "json.info_0000000009"
    assert leader_child(["log_replicas", "json.info_x"]) is None
    assert leader_child([]) is None


def test_master_info_url_prefers_ip_over_http_and_hostname_over_https():
    info = {"address": {"ip": "10.1.2.3", "hostname": "m1.example", "port": 5050}}
    assert master_info_url(info) == "http://10.1.2.3:5050"
    assert master_info_url(info, "https") == "https://m1.example:5050"
    assert master_info_url({"hostname": "m2", "port": 5051}) == "http://m2:5051"
    # The legacy packed IPv4 field (little-endian uint32 of the network-order address).
    assert master_info_url({"ip": 0x0100007F, "port": 5050}) == "http://127.0.0.1:5050"
    with pytest.raises(DetectorError, match="no address"):
        master_info_url({"id": "x"})


def _master_info(port: int) -> bytes:
    return json.dumps(
        {"id": f"m{port}", "address": {"ip": "127.0.0.1", "hostname": "localhost", "port": port}}
    ).encode()


async def _wait_leader(detector: ZooKeeperDetector, expected: list[str], timeout=10.0) -> None:
    async with asyncio.timeout(timeout):
        while detector.candidates() != expected:
            detector.changed.clear()
            await detector.changed.wait()


async def test_zookeeper_detector_follows_the_lowest_znode(zookeeper, unique_zk_path):
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=zookeeper.hosts)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, zk.start, 10)
    try:
        # The path does not exist yet: the detector must wait for it, not give up.
        detector = ZooKeeperDetector(zookeeper.hosts, unique_zk_path)
        await detector.start()
        assert detector.candidates() == []
        loop_thread = threading.get_ident()
        seen_threads: list[int] = []
        original = detector._set_leader

        def spy(url, info):
            seen_threads.append(threading.get_ident())
            original(url, info)

        detector._set_leader = spy

        def create(node: str, port: int) -> str:
            return zk.create(
                f"{unique_zk_path}/{node}",
                _master_info(port),
                ephemeral=True,
                sequence=True,
                makepath=True,
            )

        first = await loop.run_in_executor(None, create, "json.info_", 5001)
        await _wait_leader(detector, ["http://127.0.0.1:5001"])
        second = await loop.run_in_executor(None, create, "json.info_", 5002)
        await loop.run_in_executor(None, create, "log_replicas", 9999)
        await asyncio.sleep(0.3)
        assert detector.candidates() == ["http://127.0.0.1:5001"]  # still the lowest

        await loop.run_in_executor(None, zk.delete, first)
        await _wait_leader(detector, ["http://127.0.0.1:5002"])
        assert detector.leader_info["id"] == "m5002"
        await loop.run_in_executor(None, zk.delete, second)
        await _wait_leader(detector, [])
        assert seen_threads and set(seen_threads) == {loop_thread}  # handed to the loop
        await detector.stop()
    finally:
        await loop.run_in_executor(None, zk.stop)
        await loop.run_in_executor(None, zk.close)


async def test_zookeeper_detector_start_fails_cleanly_when_zookeeper_is_down():
    port = free_port()  # nothing listens
    detector = ZooKeeperDetector(f"127.0.0.1:{port}", "/mesos", timeout=1.0)
    with pytest.raises(Exception, match="[Tt]ime"):
        await detector.start()
    await detector.stop()
