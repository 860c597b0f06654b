"""MesosSpawner's Spark hooks with the shared framework stubbed: the Spark role's capacity for
the form and progress, Spark settings refused before anything reaches Mesos."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from mesosspawner import MesosSpawner
from mesosspawner.mesos.resources import parse_resources
from mesosspawner.placement import AgentCapacity

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


class StubFramework:
    """The capacity and launch surface of MesosFramework the Spark hooks use."""

    def __init__(self) -> None:
        self.totals_known = True
        self.config = SimpleNamespace(
            roles=("*", "spark"), hub_id="hub", principal=None, secret=None, ca_file=None
        )
        self.launched: list = []

    def capacity(self) -> list[AgentCapacity]:
        def res(text):
            return tuple(parse_resources(text))

        return [
            AgentCapacity(
                "a1",
                "spark-1",
                res("cpus(spark):8;mem(spark):8192;cpus:1;mem:1024;ports:[31000-31009]"),
                res("cpus(spark):5;mem(spark):6144;cpus:1;mem:1024;ports:[31000-31009]"),
            ),
            AgentCapacity("a2", "plain-1", res("cpus:4;mem:4096"), res("cpus:4;mem:4096")),
        ]

    async def ensure_started(self, timeout=None) -> None:
        pass

    async def refresh_capacity(self, max_age=10.0, timeout=2.0) -> None:
        pass

    async def never_fits(self, request):
        return None

    async def launch(self, req):
        self.launched.append(req)
        await asyncio.sleep(3600)

    def why_waiting(self, req) -> str:
        return "waiting"

    def task(self, task_id):
        return None

    def _master_base(self) -> str | None:
        return None


@pytest.fixture
def stub(monkeypatch) -> StubFramework:
    fw = StubFramework()
    monkeypatch.setattr(MesosSpawner, "framework", property(lambda self: fw))
    return fw


def make_spawner(**traits) -> MesosSpawner:
    user = SimpleNamespace(name="alice", id=1, groups=[], url="/user/alice/")
    traits.setdefault("mesos_master", "http://127.0.0.1:1")
    return MesosSpawner(user=user, **traits)


async def test_the_spark_profile_shows_the_spark_roles_free_capacity(stub):
    spawner = make_spawner(profile_list=PROFILES)
    profs = await spawner._profiles()
    capacity = spawner.profile_capacity(profs)
    assert capacity["spark"].spark == (
        "Spark role spark: 5 of 8 CPUs and 6 of 8 GB free for executors"
    )
    assert capacity["cpu"].spark is None
    assert spawner.uses_spark()
    assert not make_spawner(profile_list=PROFILES[:1]).uses_spark()


async def test_a_spark_spawn_says_what_the_spark_role_has_free(stub):
    spawner = make_spawner(profile_list=PROFILES, uid=1000, gid=100, spark_cleanup_interval=0)
    await spawner.apply_profile({"profile": "spark"})
    start = asyncio.ensure_future(spawner.start())
    for _ in range(100):
        if stub.launched:
            break
        await asyncio.sleep(0.05)
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start
    events = [event["message"] async for event in spawner.progress()]
    assert (
        "Spark role spark: 5 of 8 CPUs and 6 of 8 GB free for executors; this notebook's"
        " executors may hold 2" in events
    )


async def test_a_local_mode_spark_profile_says_no_executor_runs_on_the_cluster(stub):
    local = dict(SPARK_PROFILE, mesosspawner_override={"role": "spark", "spark_master": "local[2]"})
    spawner = make_spawner(profile_list=[local], uid=1000, gid=100)
    await spawner.apply_profile({"profile": "spark"})
    start = asyncio.ensure_future(spawner.start())
    for _ in range(100):
        if stub.launched:
            break
        await asyncio.sleep(0.05)
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start
    events = [event["message"] async for event in spawner.progress()]
    assert any("Spark runs in local mode inside this notebook" in e for e in events), events
    assert not any("Spark role" in e for e in events)


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
