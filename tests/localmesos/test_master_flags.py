"""``GET /master/flags`` on both masters: every flag as a string under ``flags``, answered by
the master asked (leading or not), and a master started without authentication says so: what
the hub's start check (mesosspawner/start_check.py) reads."""

from __future__ import annotations

from tests.services.cluster import get_json

AUTHENTICATION = (
    "authenticate_agents",
    "authenticate_frameworks",
    "authenticate_http_frameworks",
    "authenticate_http_readonly",
    "authenticate_http_readwrite",
)


async def test_flags_are_strings_and_say_nothing_is_authenticated(backend):
    answer = await get_json(f"{backend.master_url}/master/flags")
    flags = answer["flags"]
    assert all(isinstance(v, str) for v in flags.values()), flags
    assert {name: flags[name] for name in AUTHENTICATION} == dict.fromkeys(AUTHENTICATION, "false")
    assert "acls" not in flags  # none given
    assert flags["port"] == str(backend.port)
