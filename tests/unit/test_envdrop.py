"""EnvDrop: a one-time env file answers once, to the right key, and expires."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import pytest
from tornado.httpclient import AsyncHTTPClient

from mesosspawner.envdrop import EnvDrop


@pytest.fixture
async def drop():
    d = EnvDrop("127.0.0.1", 0, "127.0.0.1")
    d.start()
    yield d
    d.stop()


async def get(url: str):
    return await AsyncHTTPClient().fetch(url, raise_error=False)


async def test_an_env_file_is_served_once(drop):
    _, url = drop.put("JUPYTERHUB_API_TOKEN=abc\n", ttl=30)
    first = await get(url)
    assert first.code == 200 and first.body == b"JUPYTERHUB_API_TOKEN=abc\n"
    assert first.headers["Cache-Control"] == "no-store"
    second = await get(url)
    assert second.code == 404
    assert len(drop) == 0


async def test_unknown_discarded_and_expired_keys_get_nothing(drop):
    key, url = drop.put("A_TOKEN=1\n", ttl=30)
    assert (await get(url[:-1] + ("x" if url[-1] != "x" else "y"))).code == 404
    drop.discard(key)
    assert (await get(url)).code == 404
    _, short = drop.put("B_TOKEN=2\n", ttl=0.05)
    await asyncio.sleep(0.1)
    assert (await get(short)).code == 404


async def test_urls_are_unguessable_and_name_the_public_host():
    d = EnvDrop("127.0.0.1", 0, "hub.lab.example")
    d.start()
    try:
        keys = {d.put("X=1\n", ttl=30)[0] for _ in range(50)}
        assert len(keys) == 50 and all(len(k) == 43 for k in keys)
        assert d.put("X=1\n", ttl=30)[1].startswith(f"http://hub.lab.example:{d.port}/env/")
    finally:
        d.stop()
    with pytest.raises(OSError):  # stopped: nothing listens any more
        await AsyncHTTPClient().fetch(f"http://127.0.0.1:{d.port}/env/" + "a" * 43)


# ---------------------------------------------------------------------------- issue 15 item 10


async def test_a_drop_that_failed_to_bind_is_not_kept_and_the_next_spawn_retries():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    try:
        with pytest.raises(OSError):
            EnvDrop.shared("127.0.0.1", port, "127.0.0.1")
        assert ("127.0.0.1", port) not in EnvDrop._shared  # no dead drop for later spawns
    finally:
        blocker.close()
    drop = EnvDrop.shared("127.0.0.1", port, "127.0.0.1")  # the port is free again
    try:
        _, url = drop.put("A_TOKEN=1\n", ttl=30)
        assert (await get(url)).body == b"A_TOKEN=1\n"
        assert EnvDrop.shared("127.0.0.1", port, "127.0.0.1") is drop
    finally:
        drop.stop()


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA and a certificate for 127.0.0.1 signed by it, as JupyterHub's internal_ssl makes
    them (certipy): hub-ca and hub-internal."""
    from certipy import Certipy

    store = Certipy(store_dir=str(tmp_path_factory.mktemp("certs")))
    store.create_ca("hub-ca")
    return store.create_signed_pair("hub-internal", "hub-ca", alt_names=["IP:127.0.0.1"])["files"]


async def test_https_with_a_certificate_the_fetcher_verifies(certs):
    drop = EnvDrop("127.0.0.1", 0, "127.0.0.1", certfile=certs["cert"], keyfile=certs["key"])
    drop.start()
    try:
        _, url = drop.put("JUPYTERHUB_API_TOKEN=abc\n", ttl=30)
        assert url.startswith("https://127.0.0.1:")
        # A client that does not trust the hub's CA gets nothing (and the URL is not used up).
        with pytest.raises(ssl.SSLCertVerificationError):
            await AsyncHTTPClient().fetch(url)
        ok = await AsyncHTTPClient().fetch(url, ca_certs=certs["ca"])
        assert ok.body == b"JUPYTERHUB_API_TOKEN=abc\n"
        _, url = drop.put("JUPYTERHUB_API_TOKEN=abc\n", ttl=30)
        with pytest.raises(Exception) as plain:  # no plain HTTP beside it
            await AsyncHTTPClient().fetch(url.replace("https://", "http://"))
        assert "abc" not in str(plain.value)
        assert len(drop) == 1
    finally:
        drop.stop()


async def test_idle_connections_are_closed_and_open_ones_are_capped():
    drop = EnvDrop("127.0.0.1", 0, "127.0.0.1", max_connections=3, idle_timeout=0.5)
    drop.start()
    try:
        # Connections that never send a request (slowloris) are closed after idle_timeout.
        idle = [await asyncio.open_connection("127.0.0.1", drop.port) for _ in range(3)]
        started = time.monotonic()
        for reader, _ in idle:
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        assert time.monotonic() - started < 3
        # Over the cap, a connection is closed at once; under it, env files are served.
        held = [await asyncio.open_connection("127.0.0.1", drop.port) for _ in range(3)]
        await asyncio.sleep(0.1)
        reader, _ = await asyncio.open_connection("127.0.0.1", drop.port)
        assert await asyncio.wait_for(reader.read(), 0.4) == b""
        for _, writer in held:
            writer.close()
        _, url = drop.put("A_TOKEN=1\n", ttl=30)
        response = await wait_served(url)
        assert response.body == b"A_TOKEN=1\n"
    finally:
        drop.stop()


async def wait_served(url: str, timeout: float = 5):
    """The drop frees a closed connection's slot on its next loop turn."""
    deadline = time.monotonic() + timeout
    while True:
        response = await get(url)
        if response.code != 599 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.05)


async def test_a_second_fetch_of_a_taken_url_is_logged(drop, caplog):
    _, url = drop.put("A_TOKEN=1\n", ttl=30)
    assert (await get(url)).code == 200
    assert (await get(url)).code == 404
    assert "fetched a second time" in caplog.text
    assert url.rsplit("/", 1)[1] not in caplog.text  # never the key
