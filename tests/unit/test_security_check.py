"""The start check's judgement (``security_check``, pure): which flags and answers make a
cluster unsafe for notebooks, and what the hub says to fix each."""

from __future__ import annotations

import pytest

from mesosspawner.security_check import (
    ADVICE,
    INSECURE,
    UNCHECKED,
    Answers,
    assess,
    refuses,
    report,
)

SECURE = {
    "authenticate_agents": "true",
    "authenticate_frameworks": "true",
    "authenticate_http_frameworks": "true",
    "authenticate_http_readonly": "true",
    "authenticate_http_readwrite": "true",
    "acls": "permissive: false\nrun_tasks {\n  principals {\n    type: NONE\n  }\n}\n",
    "zk": "/etc/mesos/zk-url",  # --zk=file://: the file's path is what /master/flags shows
}
AGENT = "agent-1 (10.0.0.5:5051)"


def answers(flags=None, agent_code=401, **kw) -> Answers:
    flags = SECURE if flags is None else flags
    return Answers("zk://***@zk:2181/mesos", flags=flags, agent=AGENT, agent_code=agent_code, **kw)


def test_a_secure_cluster_has_no_findings():
    assert assess(answers()) == []
    assert not refuses([])


@pytest.mark.parametrize(
    ("flag", "named"),
    [
        ("authenticate_http_frameworks", "--http_framework_authenticators=basic"),
        ("authenticate_frameworks", "--authenticate_frameworks"),
        ("authenticate_http_readwrite", "--authenticate_http_readwrite"),
        ("authenticate_http_readonly", "--authenticate_http_readonly"),
        ("authenticate_agents", "--authenticate_agents"),
    ],
)
def test_each_missing_authentication_flag_is_refused_naming_the_flag(flag, named):
    findings = assess(answers({**SECURE, flag: "false"}))
    assert [f.severity for f in findings] == [INSECURE]
    assert named in findings[0].fix
    assert refuses(findings)


def test_a_missing_flag_counts_as_false():
    flags = dict(SECURE)
    del flags["authenticate_http_readwrite"]
    (finding,) = assess(answers(flags))
    assert "teardown" in finding.what and "--authenticate_http_readwrite" in finding.fix


def test_no_acls_and_acls_without_run_tasks_are_refused():
    flags = dict(SECURE)
    del flags["acls"]
    (none,) = assess(answers(flags))
    assert none.severity == INSECURE and "--acls" in none.fix and "root" in none.what
    (no_run_tasks,) = assess(answers({**SECURE, "acls": "permissive: false\n"}))
    assert "run_tasks" in no_run_tasks.what and '"root"' in no_run_tasks.fix


def test_zookeeper_without_a_digest_is_refused_inline_password_is_advice():
    (open_zk,) = assess(answers({**SECURE, "zk": "zk://zk1:2181,zk2:2181/mesos"}))
    assert open_zk.severity == INSECURE
    assert "leader znode" in open_zk.what and "zk://user:password@" in open_zk.fix
    (inline,) = assess(answers({**SECURE, "zk": "zk://mesos:s3cret@zk1:2181/mesos"}))
    assert inline.severity == ADVICE and "--zk=file://" in inline.fix
    assert "s3cret" not in str(inline)  # the finding never repeats the password
    assert not refuses([inline])
    standalone = dict(SECURE)
    del standalone["zk"]
    assert assess(answers(standalone)) == []


def test_an_agent_answering_anonymously_is_refused_naming_the_agent_flags():
    (finding,) = assess(answers(agent_code=200))
    assert finding.severity == INSECURE and AGENT in finding.what
    assert "--authenticate_http_readonly" in finding.fix and "--http_credentials" in finding.fix


def test_an_unreachable_agent_or_none_at_all_is_advice_not_a_refusal():
    (unreachable,) = assess(answers(agent_code=None, agent_error="connection refused"))
    assert unreachable.severity == ADVICE and "connection refused" in unreachable.what
    (none,) = assess(
        Answers("m", flags=SECURE, agent=None, agents_error="the agent list could not be read")
    )
    assert none.severity == ADVICE and not refuses([unreachable, none])


@pytest.mark.parametrize(
    ("code", "principal", "fix"),
    [
        (401, None, "c.MesosSpawner.principal and secret_file"),
        (401, "hub", "principal 'hub'"),
        (403, "hub", "view_flags ACL for 'hub'"),
        (404, "hub", "Mesos 1.x master"),
        (None, "hub", "start the hub when the master answers"),
    ],
)
def test_flags_that_cannot_be_read_leave_the_cluster_unchecked(code, principal, fix):
    a = Answers("http://m:5050", flags_code=code, flags_error="why", principal=principal)
    (finding,) = assess(a)  # no agent advice: no agent was looked for
    assert finding.severity == UNCHECKED and fix in finding.fix
    assert refuses([finding])


def test_report_names_the_flags_the_guide_and_the_way_out():
    findings = assess(answers({**SECURE, "authenticate_http_frameworks": "false"}, agent_code=200))
    text = report(findings, "zk://***@zk:2181/mesos", allowed=False)
    assert "is not safe for notebooks" in text
    assert "--authenticate_http_frameworks" in text and "--authenticate_http_readonly" in text
    assert "Hardening a real cluster" in text
    assert "allow_insecure_cluster = True" in text and "does not start" in text
    allowed = report(findings, "m", allowed=True)
    assert "Starting anyway" in allowed and "does not start" not in allowed


def test_a_root_framework_user_under_acls_refusing_root_is_noticed():
    (finding,) = assess(answers(framework_user="root"))
    assert finding.severity == ADVICE and "framework_user" in finding.fix
    assert assess(answers(framework_user="jupyterhub")) == []
