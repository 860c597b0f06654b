"""EnvDrop: a one-time env file answers once, to the right key, and expires."""

from __future__ import annotations

import asyncio

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
