"""MesosSpawner's one validation path for user_options, with list and callable profile_list."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from tornado import web

from mesosspawner import MesosSpawner

PROFILES = [
    {"display_name": "CPU", "slug": "cpu", "default": True},
    {"display_name": "GPU", "slug": "gpu", "mesosspawner_override": {"gpus": 1, "mem_limit": "4G"}},
]


def spawner(profile_list) -> MesosSpawner:
    user = SimpleNamespace(name="alice", id=1, groups=[], url="/user/alice/")
    return MesosSpawner(user=user, profile_list=profile_list, mesos_master="http://127.0.0.1:1")


@pytest.mark.parametrize("profile_list", [PROFILES, lambda spawner: PROFILES])
async def test_profile_overrides_are_applied_through_traits(profile_list):
    s = spawner(profile_list)
    await s.apply_user_options(s, {"profile": "gpu"})
    assert s.gpus == 1
    assert s.mem_limit == 4 * 1024**3
    assert s.profile_slug == "gpu"


@pytest.mark.parametrize("profile_list", [PROFILES, lambda spawner: PROFILES])
async def test_empty_options_mean_the_default_profile(profile_list):
    s = spawner(profile_list)
    await s.apply_user_options(s, {})
    assert s.profile_slug == "cpu" and s.gpus == 0


@pytest.mark.parametrize(
    "options", [{"profile": "tpu"}, {"profile": ["gpu"]}, {"profile": "gpu", "gpus": 4}, {"x": 1}]
)
async def test_bad_options_are_400_naming_the_problem(options):
    s = spawner(PROFILES)
    with pytest.raises(web.HTTPError) as info:
        await s.apply_user_options(s, options)
    assert info.value.status_code == 400
    assert info.value.log_message
    assert s.gpus == 0  # nothing was applied


async def test_misconfigured_profile_list_is_a_server_error_not_a_user_error():
    s = spawner([{"display_name": "A", "slug": "a", "mesosspawner_override": {"gpu": 1}}])
    with pytest.raises(web.HTTPError) as info:
        await s.apply_user_options(s, {})
    assert info.value.status_code == 500
    assert "gpu" in info.value.log_message
