"""spark: a notebook driver's settings, whose Spark frameworks are whose, the Spark role's
capacity. Pure: no master, no Spark (the real ones judge in tests/e2e/test_real_spark.py)."""

from __future__ import annotations

import pytest

from mesosspawner import spark
from mesosspawner.mesos.resources import parse_resources
from mesosspawner.placement import AgentCapacity

ADDRESS = spark.driver_address("10.0.0.7", (31000, 31001, 31002, 31003, 31004))
NB = "jupyter.hub.alice..n1"  # a notebook task id of hub "hub"
PREFIX = "jupyter.hub."


def conf_of(settings: spark.SparkSettings, **kw) -> dict[str, str]:
    kw.setdefault("task_id", NB)
    kw.setdefault("uid", 1001)
    kw.setdefault("gid", 100)
    return spark.driver_conf(settings, ADDRESS, **kw)


def test_driver_address_takes_the_ports_after_the_notebooks():
    assert ADDRESS == spark.DriverAddress("10.0.0.7", 31001, 31002, 31003, 31004)
    assert ADDRESS.libprocess == "10.0.0.7:31003"


def test_the_profile_bounds_and_places_the_executors():
    settings = spark.SparkSettings(
        "mesos://m:5050",
        role="spark",
        cores_max=2,
        executor_constraints="spark_cluster:prod",
        principal="spark-nb",
    )
    conf = conf_of(settings)
    assert conf["spark.cores.max"] == "2"
    assert conf["spark.mesos.constraints"] == "spark_cluster:prod"
    assert conf["spark.mesos.principal"] == "spark-nb"
    assert "spark.mesos.secret" not in conf
    # No executor image: no Docker settings at all.
    assert not any(k.startswith("spark.mesos.executor.docker") for k in conf)
    assert "spark.cores.max" not in conf_of(spark.SparkSettings("mesos://m:5050"))


def test_configured_settings_keep_their_place_but_the_offer_decides_the_driver():
    settings = spark.SparkSettings(
        "mesos://m:5050", conf={"spark.app.name": "mine", "spark.executor.cores": 1}
    )
    conf = conf_of(settings)
    assert conf["spark.app.name"] == "mine"  # an admin may rename; executors' labels still tell
    assert conf["spark.executor.cores"] == "1"
    assert conf["spark.mesos.task.labels"] == f"mesosspawner.notebook:{NB}"
    assert list(conf)[-5:] == [
        "spark.driver.host",
        "spark.driver.port",
        "spark.driver.blockManager.port",
        "spark.ui.port",
        "spark.port.maxRetries",
    ]


@pytest.mark.parametrize(
    "settings, match",
    [
        (spark.SparkSettings("spark://m:7077"), "mesos://HOST:PORT"),
        (spark.SparkSettings("mesos://m:5050", cores_max=0), "spark_cores_max must be > 0"),
        (spark.SparkSettings("mesos://m", conf={"spark.x": True}), "string or number"),
        (spark.SparkSettings("mesos://m", conf={"spark.ui.port": 4040}), "from the notebook's"),
        (
            spark.SparkSettings("mesos://m", mesos_native_library="lib/libmesos-java.so"),
            "absolute path of Mesos's JNI library",
        ),
    ],
)
def test_check_names_the_setting_and_the_fix(settings, match):
    with pytest.raises(ValueError, match=match):
        spark.check(settings)


def test_local_mode_is_a_valid_master():
    spark.check(spark.SparkSettings("local[2]"))


# ---------------------------------------------------------------------------- frameworks


def task(task_id, state="TASK_RUNNING", **labels):
    return {
        "id": task_id,
        "state": state,
        "labels": [{"key": k.replace("_", "."), "value": v} for k, v in labels.items()],
    }


def hub_framework(*tasks, completed=()):
    return {"id": "hub-fw", "name": "jupyterhub", "pid": "", "tasks": list(tasks),
            "completed_tasks": list(completed)}  # fmt: skip


def spark_framework(fid, name, pid="scheduler-1@10.0.0.9:40000", tasks=()):
    return {"id": fid, "name": name, "pid": pid, "tasks": list(tasks)}


def test_a_framework_belongs_to_the_notebook_by_name_label_or_driver_address():
    by_name = spark_framework("f1", NB)
    renamed_with_executors = spark_framework(
        "f2", "my app", tasks=[task("0", mesosspawner_notebook=NB)]
    )
    renamed_idle = spark_framework("f3", "my app", pid="scheduler-x@10.0.0.7:31003")
    other = spark_framework("f4", "jupyter.hub.bob..n2")
    frameworks = [by_name, renamed_with_executors, renamed_idle, other]
    assert spark.frameworks_of(frameworks, NB) == ["f1", "f2"]
    assert spark.frameworks_of(frameworks, NB, driver="10.0.0.7:31003") == ["f1", "f2", "f3"]


def test_orphans_are_frameworks_whose_notebook_no_longer_runs():
    frameworks = [
        hub_framework(
            task("jupyter.hub.alive..n1", **{"mesosspawner.spark-driver": "10.0.0.7:31003"}),
            task("jupyter.hub.cut-off..n1", state="TASK_UNREACHABLE"),
            completed=[
                task("jupyter.hub.killed..n1", state="TASK_KILLED"),
                task(
                    "jupyter.hub.old..n1",
                    state="TASK_FINISHED",
                    **{"mesosspawner.spark-driver": "10.0.0.8:31003"},
                ),
            ],  # fmt: skip
        ),
        spark_framework("alive", "jupyter.hub.alive..n1"),
        spark_framework("alive-renamed", "x", pid="scheduler-a@10.0.0.7:31003"),
        spark_framework("partitioned", "jupyter.hub.cut-off..n1"),
        spark_framework("orphan", "jupyter.hub.killed..n1"),
        spark_framework("orphan-renamed", "y", pid="scheduler-b@10.0.0.8:31003"),
        spark_framework(
            "unknown", "z", tasks=[task("3", mesosspawner_notebook="jupyter.hub.x..n")]
        ),
        spark_framework("other-hub", "jupyter.other.killed..n1"),
        spark_framework("not-a-notebook", "etl nightly"),
    ]
    assert spark.orphans(frameworks, PREFIX) == [
        ("orphan", "jupyter.hub.killed..n1", True),
        ("orphan-renamed", "jupyter.hub.old..n1", True),
        ("unknown", "jupyter.hub.x..n", False),
    ]


def test_a_live_notebook_owns_an_address_a_finished_one_also_had():
    address = {"mesosspawner.spark-driver": "10.0.0.7:31003"}
    frameworks = [
        hub_framework(
            task("jupyter.hub.new..n2", **address),
            completed=[task("jupyter.hub.old..n1", state="TASK_KILLED", **address)],
        ),
        spark_framework("f", "renamed", pid="scheduler-c@10.0.0.7:31003"),
    ]
    assert spark.orphans(frameworks, PREFIX) == []


# ---------------------------------------------------------------------------- capacity


def agent(total, free):
    return AgentCapacity(
        "a1", "spark-1", tuple(parse_resources(total)), tuple(parse_resources(free))
    )


def test_role_capacity_counts_what_is_reserved_for_the_role():
    agents = [
        agent(
            "cpus(spark):8;mem(spark):8192;cpus:2;mem:1024", "cpus(spark):6;mem(spark):7168;cpus:2"
        ),
        agent("cpus:4;mem:4096", "cpus:4;mem:4096"),
    ]
    cap = spark.role_capacity(agents, "spark")
    assert cap == spark.RoleCapacity("spark", 6, 8, 7168, 8192)
    assert cap.describe() == "6 of 8 CPUs and 7 of 8 GiB free for Spark executors"
    assert spark.role_capacity(agents, "gpu") is None


def test_progress_note_says_where_jobs_run_and_what_the_role_has_free():
    agents = [agent("cpus(spark):8;mem(spark):8192", "cpus(spark):6;mem(spark):7168")]
    settings = spark.SparkSettings("mesos://m:5050", role="spark", cores_max=2)
    assert spark.progress_note(settings, agents, "spark") == (
        "Spark role spark: 6 of 8 CPUs and 7 of 8 GiB free for Spark executors;"
        " this notebook's executors may hold 2 CPUs"
    )
    assert spark.progress_note(settings, agents, "other") is None  # nothing reserved for it
    local = spark.progress_note(spark.SparkSettings("local[2]"), agents, None)
    assert "local mode" in local and "no executor runs on the cluster" in local
