"""MesosSpawner's Spark hooks with the shared framework stubbed: the Spark role's capacity for
the form and progress, Spark settings refused before anything reaches Mesos."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub

from mesosspawner import MesosSpawner
from mesosspawner.mesos.resources import parse_resources
from mesosspawner.placement import AgentCapacity
from mesosspawner.tasks import TaskRecord
from tests.services.fakes import StubFramework, fake_passwd

SPARK_PROFILE = {
    "display_name": "Spark",
    "slug": "spark",
    "mesosspawner_override": {
        "role": "spark",
        "spark_master": "mesos://m:5050",
        "spark_role": "spark",
        "spark_cores_max": 2,
    },
}
PROFILES = [{"display_name": "CPU", "slug": "cpu", "default": True}, SPARK_PROFILE]


@pytest.fixture(autouse=True)
def accounts(monkeypatch) -> None:
    """alice and friends are accounts of the hub host (identity.resolve needs one)."""
    fake_passwd(monkeypatch)


def res(text: str) -> tuple:
    return tuple(parse_resources(text))


AGENTS = (
    AgentCapacity(
        "a1",
        "spark-1",
        res("cpus(spark):8;mem(spark):8192;cpus:1;mem:1024;ports:[31000-31009]"),
        res("cpus(spark):5;mem(spark):6144;cpus:1;mem:1024;ports:[31000-31009]"),
    ),
    AgentCapacity("a2", "plain-1", res("cpus:4;mem:4096"), res("cpus:4;mem:4096")),
)


@pytest.fixture
def stub(monkeypatch) -> StubFramework:
    fw = StubFramework(roles=("*", "spark"), agents=AGENTS)
    monkeypatch.setattr(MesosSpawner, "framework", property(lambda self: fw))
    return fw


def make_spawner(**traits) -> MesosSpawner:
    user = SimpleNamespace(name="alice", id=1, groups=[], url="/user/alice/")
    traits.setdefault("mesos_master", "http://127.0.0.1:1")
    traits.setdefault("hub", Hub(ip="127.0.0.1", port=8081, base_url="/hub/"))
    return MesosSpawner(user=user, **traits)


async def test_the_spark_profile_shows_the_spark_roles_free_capacity(stub):
    spawner = make_spawner(profile_list=PROFILES)
    profs = await spawner._profiles()
    capacity = spawner.profile_capacity(profs)
    assert capacity["spark"].detail == (
        "Room free now; 5 of 8 CPUs and 6 of 8 GiB free for Spark executors — starts now"
    )
    assert capacity["cpu"].detail == "Room free now — starts now"
    assert spawner.uses_spark()
    assert not make_spawner(profile_list=PROFILES[:1]).uses_spark()
    local = dict(SPARK_PROFILE, mesosspawner_override={"spark_master": "local[2]"})
    assert not make_spawner(profile_list=[local]).uses_spark()  # no framework to sweep for


async def progress_of_a_start(spawner, stub) -> list[str]:
    """The progress messages of a start, up to its launch (the stub holds it there)."""
    start = asyncio.ensure_future(spawner.start())
    for _ in range(100):
        if stub.launched:
            break
        await asyncio.sleep(0.05)
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start
    return [event["message"] async for event in spawner.progress()]


async def test_a_spark_spawn_says_what_the_spark_role_has_free(stub):
    spawner = make_spawner(profile_list=PROFILES, uid=1000, gid=100, spark_cleanup_interval=0)
    await spawner.apply_profile({"profile": "spark"})
    events = await progress_of_a_start(spawner, stub)
    assert (
        "Spark role spark: 5 of 8 CPUs and 6 of 8 GiB free for Spark executors; this"
        " notebook's executors may hold 2 CPUs" in events
    )
    assert stub.spark.calls == [("start", 0)]  # the orphan sweep, at the interval configured


async def test_a_local_mode_spark_profile_says_no_executor_runs_on_the_cluster(stub):
    local = dict(SPARK_PROFILE, mesosspawner_override={"role": "spark", "spark_master": "local[2]"})
    spawner = make_spawner(profile_list=[local], uid=1000, gid=100)
    await spawner.apply_profile({"profile": "spark"})
    events = await progress_of_a_start(spawner, stub)
    assert any("Spark runs in local mode inside this notebook" in e for e in events), events
    assert not any("Spark role" in e for e in events)
    assert stub.spark.calls == []  # local mode starts no Spark framework: nothing to sweep
    profs = await spawner._profiles()
    assert "Spark" not in spawner.profile_capacity(profs)["spark"].detail


@pytest.mark.parametrize(
    "conf, match",
    [
        ({"spark.blockManager.port": "4000"}, "applies to executors too"),
        ({"spark.driver.port": "4000"}, "from the notebook's Mesos offer"),
    ],
)
async def test_spark_settings_that_cannot_work_stop_the_spawn_before_mesos(stub, conf, match):
    spawner = make_spawner(
        profile_list=PROFILES, uid=1000, gid=100, spark_conf=conf, spark_cleanup_interval=0
    )
    await spawner.apply_profile({"profile": "spark"})
    with pytest.raises(Exception, match=match):
        await spawner.start()
    assert stub.launched == []


async def test_stopping_a_spark_notebook_tears_its_spark_frameworks_down(stub):
    """stop() asks the framework's Spark cleanup to tear down what the notebook started (by
    its task id and its driver's libprocess address, the 4th port of its placement); a poll
    that finds the notebook dead asks the same in the background. A CPU notebook asks nothing."""
    ports = (31000, 31001, 31002, 31003, 31004)
    stub.runs = TaskRecord("jupyter.hub.alice..n1", agent_id="a1", hostname="spark-1",
                           ip="10.0.0.7", ports=ports, state="TASK_RUNNING")  # fmt: skip
    spawner = make_spawner(profile_list=PROFILES, uid=1000, gid=100, spark_cleanup_interval=0)
    await spawner.apply_profile({"profile": "spark"})
    await spawner.start()
    assert spawner.get_state()["spark_driver"] == "10.0.0.7:31003"
    await spawner.stop()
    assert ("stop_notebook", "jupyter.hub.alice..n1", "10.0.0.7:31003") in stub.spark.calls

    stub.runs.state = "TASK_FAILED"  # ... and one found dead by a poll
    assert await spawner.poll() == 1
    assert stub.spark.calls[-1] == ("stop_notebook_soon", "jupyter.hub.alice..n1", "10.0.0.7:31003")

    cpu = make_spawner(profile_list=PROFILES, uid=1000, gid=100)
    stub.runs = TaskRecord("jupyter.hub.alice..n2", ports=(31000,), state="TASK_RUNNING")
    stub.spark.calls.clear()
    await cpu.start()
    await cpu.stop()
    assert stub.spark.calls == []
