"""MesosSpawner's JupyterHub contract and guards, with the shared framework replaced by a stub:
poll() while start() runs, refusing root by name and by number, enum-like traits."""

from __future__ import annotations

import asyncio
import dataclasses
import pwd
import socket
from types import MappingProxyType, SimpleNamespace

import pytest
from jupyterhub.objects import Hub
from traitlets import TraitError
from traitlets.config import Config

from mesosspawner import MesosSpawner
from mesosspawner import spawner as spawner_module
from mesosspawner.mesos.resources import parse_resources
from mesosspawner.placement import Placement
from tests.services.fakes import StubFramework, fake_passwd


@pytest.fixture(autouse=True)
def accounts(monkeypatch) -> None:
    """alice and friends are accounts of the hub host (identity.resolve needs one)."""
    fake_passwd(monkeypatch)


@pytest.fixture
def stub(monkeypatch) -> StubFramework:
    fw = StubFramework()
    monkeypatch.setattr(MesosSpawner, "framework", property(lambda self: fw))
    return fw


def make_spawner(name: str = "alice", **traits) -> MesosSpawner:
    user = SimpleNamespace(name=name, id=1, groups=[], url=f"/user/{name}/")
    traits.setdefault("mesos_master", "http://127.0.0.1:1")
    traits.setdefault("hub", Hub(ip="127.0.0.1", port=8081, base_url="/hub/"))
    return MesosSpawner(user=user, **traits)


# ---------------------------------------------------------------------------- item 6


async def test_poll_is_none_while_start_is_still_running(stub):
    s = make_spawner()
    assert await s.poll() == 0  # never started: not running
    start = asyncio.ensure_future(s.start())
    for _ in range(100):
        if stub.launched:
            break
        await asyncio.sleep(0.01)
    assert stub.launched, "start() never asked the framework to launch"
    assert await s.poll() is None  # JupyterHub: a spawner still starting counts as running
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start
    assert await s.poll() == 0  # the start is over and nothing runs


# ---------------------------------------------------------------------------- item 3


async def _refused(s: MesosSpawner, stub: StubFramework) -> str:
    with pytest.raises(Exception) as info:
        await asyncio.wait_for(s.start(), 5)
    assert not stub.launched, "a root notebook reached the framework"
    return str(getattr(info.value, "jupyterhub_message", None) or info.value)


async def test_hub_user_named_root_with_nonzero_uid_is_refused(stub):
    s = make_spawner("root", uid=1000, gid=1000)
    message = await _refused(s, stub)
    assert "'root'" in message and "allow_root" in message


async def test_system_user_root_by_name_is_refused(stub):
    s = make_spawner("alice", system_user="root", uid=1001, gid=100)
    message = await _refused(s, stub)
    assert "'root'" in message and "allow_root" in message


async def test_system_user_that_is_a_uid0_account_is_refused(stub, monkeypatch):
    real = pwd.getpwnam

    def getpwnam(name):
        if name == "toor":
            return pwd.struct_passwd(("toor", "x", 0, 0, "", "/root", "/bin/sh"))
        return real(name)

    monkeypatch.setattr(spawner_module.pwd, "getpwnam", getpwnam)
    s = make_spawner("alice", system_user="toor", uid=1001, gid=100)
    message = await _refused(s, stub)
    assert "'toor'" in message and "uid 0" in message


async def test_uid_zero_is_refused(stub):
    s = make_spawner("alice", uid=0, gid=0)
    message = await _refused(s, stub)
    assert "uid 0" in message


def test_a_configuration_refusal_is_not_a_launch_failure():
    from mesosspawner.framework import LaunchFailed
    from mesosspawner.spawner import SpawnRefused

    s = make_spawner("alice", uid=0, gid=0)
    with pytest.raises(SpawnRefused, match="uid 0") as info:
        s._resolve_ids()
    assert not isinstance(info.value, LaunchFailed)


async def test_allow_root_lets_an_admin_opt_in(stub):
    s = make_spawner("root", uid=0, gid=0, allow_root=True)
    start = asyncio.ensure_future(s.start())
    for _ in range(100):
        if stub.launched:
            break
        await asyncio.sleep(0.01)
    assert stub.launched
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start


# ---------------------------------------------------------------------------- item 9


@pytest.mark.parametrize(
    "trait, typo, allowed",
    [
        ("placement_strategy", "binpak", "binpack"),
        ("containerizer", "dokcer", "docker"),
        ("network_mode", "bridged", "bridge"),
    ],
)
def test_typo_in_enum_like_trait_is_refused_at_configuration(trait, typo, allowed):
    config = Config({"MesosSpawner": {trait: typo}})
    with pytest.raises(TraitError) as info:
        make_spawner(config=config)
    assert typo in str(info.value) and allowed in str(info.value)


def test_enum_like_traits_are_case_insensitive_and_canonical():
    s = make_spawner(placement_strategy="BinPack", containerizer="Mesos", network_mode="BRIDGE")
    assert (s.placement_strategy, s.containerizer, s.network_mode) == ("binpack", "mesos", "bridge")


# ---------------------------------------------------------------------------- item 5


async def test_stop_whose_kill_is_not_confirmed_is_surfaced(stub, caplog):
    from mesosspawner.framework import TaskRecord

    stuck = TaskRecord("t-1", agent_id="a-1", hostname="gpu-1", state="TASK_RUNNING")

    async def kill(task_id, timeout=60.0):
        return stuck

    stub.task = lambda task_id: stuck
    stub.kill = kill
    s = make_spawner()
    s.task_id = "t-1"
    await s.stop()
    note = stub.stops.last("alice", "")
    assert "t-1" in note and "did not confirm the kill" in note
    assert any("did not confirm the kill" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------------------- item 4

SPARK_CHOICE = {
    "display_name": "Spark",
    "slug": "spark",
    "profile_options": {
        "cluster": {
            "display_name": "Cluster",
            "choices": {
                "none": {"display_name": "None", "default": True},
                "prod": {"display_name": "Prod", "mesosspawner_override": {"role": "spark"}},
            },
        }
    },
}


def test_roles_named_by_profile_option_choices_are_subscribed():
    s = make_spawner(profile_list=[SPARK_CHOICE])
    assert "spark" in s.framework_config().roles


async def test_callable_profile_list_role_not_subscribed_is_refused_naming_framework_roles(stub):
    spark = {"display_name": "Spark", "slug": "spark", "mesosspawner_override": {"role": "spark"}}
    s = make_spawner(profile_list=lambda spawner: [spark])
    await s.apply_user_options(s, {"profile": "spark"})
    with pytest.raises(Exception) as info:
        await asyncio.wait_for(s.start(), 5)
    message = str(getattr(info.value, "jupyterhub_message", None) or info.value)
    assert "'spark'" in message and "framework_roles" in message, message
    assert not stub.launched  # it would have waited for offers of a role never subscribed


# ---------------------------------------------------------------------------- issue 18, item 2


def _plain_data(value) -> bool:
    """Only data, nothing to call: what a LaunchRequest may carry to the event consumer."""
    if dataclasses.is_dataclass(value):
        return all(_plain_data(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, dict | MappingProxyType):
        return all(_plain_data(k) and _plain_data(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain_data(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


async def test_the_spawner_hands_the_framework_data_and_reads_its_ports_from_the_task(stub):
    from mesosspawner.framework import TaskRecord

    stub.runs = TaskRecord(
        "t-1", agent_id="a-1", hostname="cpu-1", ip="10.0.0.7", ports=(31005,), state="RUNNING"
    )
    s = make_spawner(uid=1001, gid=100)
    url = await asyncio.wait_for(s.start(), 5)
    (req,) = stub.launched
    assert _plain_data(req.spec), req.spec
    assert req.spec.service_url.at(31005).startswith("http://0.0.0.0:31005/")
    assert (url, s.host_port, s.port, s.task_id) == ("http://10.0.0.7:31005", 31005, 31005, "t-1")


@pytest.mark.parametrize(
    "kind",
    [
        dict(image="lab/nb:1"),
        dict(image="lab/gpu:1", gpus=1),
        dict(),  # a plain command task
    ],
)
async def test_secrets_are_put_in_one_time_env_files_before_the_launch_is_queued(stub, kind):
    from mesosspawner.framework import TaskRecord
    from mesosspawner.taskinfo import build_task_info

    stub.runs = TaskRecord("t-1", agent_id="a-1", ip="10.0.0.7", ports=(31005,))
    s = make_spawner(env_file_port=0, environment={"DB_PASS": "db-s3cret-pass"}, **kind)
    s.api_token = "s3cr3t-t0ken-value-1234567890"
    await asyncio.wait_for(s.start(), 5)
    (req,) = stub.launched
    urls = req.spec.env_file_uris
    assert len(urls) == len(set(urls)) > 1  # one per launch attempt, each answering once
    drop = s._env_files._drop
    try:
        assert len(drop) == 0  # the launch is over: every unused one was discarded
        placed = Placement("k", "o", "a-1", "cpu-1", "10.0.0.7", "*", (), (31005,))
        if kind.get("gpus"):
            placed = dataclasses.replace(placed, resources=tuple(parse_resources("gpus:1")))
        info = build_task_info(req.spec, placed)
        assert s.api_token not in repr(info) and "db-s3cret-pass" not in repr(info)
    finally:
        drop.stop()


async def test_environment_is_secret_sends_all_of_environment_by_env_file(stub):
    from mesosspawner.framework import TaskRecord
    from mesosspawner.taskinfo import secrets_in_env_file

    stub.runs = TaskRecord("t-1", agent_id="a-1", ip="10.0.0.7", ports=(31005,))
    s = make_spawner(environment_is_secret=True, environment={"LAB_SETTING": "x"})
    s.api_token = "s3cr3t-t0ken-value-1234567890"
    await asyncio.wait_for(s.start(), 5)
    (req,) = stub.launched
    plain, secret = secrets_in_env_file(req.spec.env, req.spec.secret_env)
    assert {"LAB_SETTING", "JUPYTERHUB_API_TOKEN"} <= set(secret)
    assert "LAB_SETTING" not in plain and "JUPYTERHUB_USER" in plain
    s._env_files._drop.stop()


async def test_a_failed_env_file_server_fails_the_spawn_saying_why_and_the_next_retries(stub):
    from mesosspawner.framework import TaskRecord

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    s = make_spawner(env_file_port=port)
    s.api_token = "s3cr3t-t0ken-value-1234567890"
    with pytest.raises(Exception) as info:
        await asyncio.wait_for(s.start(), 5)
    message = str(getattr(info.value, "jupyterhub_message", None) or info.value)
    assert "env-file server cannot start" in message
    assert not stub.launched
    blocker.close()
    stub.runs = TaskRecord("t-1", agent_id="a-1", ip="10.0.0.7", ports=(31005,))
    again = make_spawner(env_file_port=port)
    again.api_token = "s3cr3t-t0ken-value-1234567890"
    await asyncio.wait_for(again.start(), 5)
    assert stub.launched
    again._env_files._drop.stop()


async def test_docker_notebooks_drop_privileges_by_default(stub):
    from mesosspawner.framework import TaskRecord

    stub.runs = TaskRecord("t-1", agent_id="a-1", ip="10.0.0.7", ports=(31005,))
    s = make_spawner(image="lab/nb:1", env_file_delivery=False, docker_parameters={"x": "1"})
    await asyncio.wait_for(s.start(), 5)
    (req,) = stub.launched
    assert req.spec.docker_parameters == (
        ("security-opt", "no-new-privileges"),
        ("cap-drop", "ALL"),
        ("x", "1"),
    )
    off = make_spawner(image="lab/nb:1", env_file_delivery=False, docker_security_parameters=[])
    await asyncio.wait_for(off.start(), 5)
    assert stub.launched[-1].spec.docker_parameters == ()


async def test_max_gpus_per_user_counts_the_persons_other_running_servers(stub):
    from mesosspawner.framework import TaskRecord

    stub.runs = TaskRecord("t-1", agent_id="a-1", ip="10.0.0.7", ports=(31005,))
    running = SimpleNamespace(active=True, task_gpus=1)
    stopped = SimpleNamespace(active=False, task_gpus=0)
    s = make_spawner(gpus=1, max_gpus_per_user=1, env_file_delivery=False)
    s.user.spawners = {"": s, "exp1": running, "old": stopped}
    message = await _refused(s, stub)
    assert "max_gpus_per_user" in message and "1 are in use by your other servers" in message
    # Within the limit it starts, and remembers its GPUs across a hub restart (state).
    s.max_gpus_per_user = 2
    await asyncio.wait_for(s.start(), 5)
    assert s.task_gpus == 1 and s.get_state()["gpus"] == 1
    again = make_spawner()
    again.load_state(s.get_state())
    assert again.task_gpus == 1
    cpu = make_spawner(max_gpus_per_user=1, env_file_delivery=False)
    cpu.user.spawners = {"exp1": running, "exp2": running}
    await asyncio.wait_for(cpu.start(), 5)  # no GPU asked for: never refused


async def test_with_internal_ssl_the_env_file_is_served_over_https_with_the_hubs_certificate(
    stub, tmp_path
):
    from certipy import Certipy
    from tornado.httpclient import AsyncHTTPClient

    # What JupyterHub's internal_ssl makes in internal_certs_location (certipy's layout).
    store = Certipy(store_dir=str(tmp_path))
    store.create_ca("hub-ca")
    ca = store.create_signed_pair("hub-internal", "hub-ca", alt_names=["IP:127.0.0.1"])["files"]
    s = make_spawner(internal_ssl=True, internal_certs_location=str(tmp_path), env_file_port=0)
    s.api_token = "s3cr3t-t0ken-value-1234567890"
    start = asyncio.ensure_future(s.start())
    for _ in range(100):
        if stub.launched:
            break
        await asyncio.sleep(0.01)
    (req,) = stub.launched
    url = req.spec.env_file_uris[0]
    assert url.startswith("https://127.0.0.1:")
    body = (await AsyncHTTPClient().fetch(url, ca_certs=ca["ca"])).body.decode()
    assert "JUPYTERHUB_API_TOKEN=s3cr3t-t0ken-value-1234567890" in body
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start
    s._env_files._drop.stop()
