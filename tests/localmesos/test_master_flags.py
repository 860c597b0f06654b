"""``GET /master/flags`` on both masters: every flag as a string under ``flags``, answered by
the master asked (leading or not), and a master started without authentication says so: what
the hub's start check (mesosspawner/start_check.py) reads."""

from __future__ import annotations

from mesosspawner.security_check import INSECURE, assess, refuses
from mesosspawner.start_check import read_cluster
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


async def test_the_start_check_reads_either_master_and_finds_it_open(backend):
    answers = await read_cluster(backend.url, principal=None, secret=None, timeout=10)
    findings = assess(answers)
    insecure = " ".join(str(f) for f in findings if f.severity == INSECURE)
    for flag in ("--authenticate_http_frameworks", "--authenticate_http_readwrite", "--acls"):
        assert flag in insecure
    assert refuses(findings)
    if backend.kind == "real":
        # A real agent answers its /state to anyone.
        assert answers.agent_code == 200 and "answers /state without credentials" in insecure
    else:
        # localmesos's agents live in the master's process: no /state of their own to read.
        assert answers.agent_code is None
