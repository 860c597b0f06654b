"""Random and hostile user_options through the REST API: each is refused with 400 (naming the
problem) before anything reaches Mesos, or means the default profile."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.services.e2e import mesos_config

HOSTILE_STRINGS = st.sampled_from(
    [
        "../../etc/passwd",
        "{username}",
        "{0.__class__}",
        "$(id)",
        "`reboot`",
        "; rm -rf /",
        "cpu\x00gpu",
        "x" * 10_000,
        "ｃｐｕ",
        "<script>alert(1)</script>",
        "",
        "CPU",
        "cpu ",
    ]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)
OPTIONS = st.one_of(
    st.fixed_dictionaries({"profile": st.one_of(HOSTILE_STRINGS, JSON)}),
    st.dictionaries(
        st.one_of(HOSTILE_STRINGS, st.text(max_size=20)), JSON, min_size=1, max_size=4
    ).filter(lambda d: set(d) != {"profile"}),
    st.fixed_dictionaries(
        {"profile": st.sampled_from(["cpu", "gpu", "spark"])},
        optional={"gpus": JSON, "image": HOSTILE_STRINGS, "volumes": JSON, "uid": st.integers()},
    ).filter(lambda d: len(d) > 1),
)


# Options are validated before anything reaches Mesos: one master (localmesos) shows it.
@pytest.fixture(scope="module")
def cluster(module_clusters):
    return module_clusters("localmesos")


@pytest.fixture(scope="module")
def hub(cluster, module_hub_factory, homes):
    return module_hub_factory(mesos_config(cluster.url, homes)).launch_blocking()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(options=OPTIONS)
async def test_hostile_user_options_get_400_and_launch_nothing(hub, cluster, user, options):
    code, body = await hub.start_server_response(user.name, options=options)
    assert code == 400, (options, code, body)
    assert isinstance(body, dict) and body.get("message"), body
    assert await cluster.tasks() == {}
