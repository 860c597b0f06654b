"""The example jupyterhub_config.py's Spark profile, as an admin or a demo user gets it: valid
for the spawner (check_config runs at the end of the file), and honest about the demo."""

from __future__ import annotations

import pytest

from mesosspawner import spark
from tests.services.example_config import load_example


def spark_override(monkeypatch, demo: bool) -> dict:
    """The Spark profile the example config defines (production wraps profile_list in the
    images service's callable, so it is read from the file's globals)."""
    return load_example(monkeypatch, demo)[1]["spark_profile"]


@pytest.mark.parametrize("demo", [False, True])
def test_the_spark_profile_is_valid(monkeypatch, demo):
    profile = spark_override(monkeypatch, demo)
    override = profile["mesosspawner_override"]
    settings = spark.SparkSettings(
        override["spark_master"],
        executor_image=override.get("spark_executor_image"),
        conf=override.get("spark_conf", {}),
        cores_max=override.get("spark_cores_max"),
        mesos_native_library=override.get("spark_mesos_native_library"),
    )
    spark.check(settings)
    assert override["role"] == "spark"


def test_the_demo_says_spark_runs_in_local_mode(monkeypatch):
    profile = spark_override(monkeypatch, demo=True)
    assert profile["mesosspawner_override"]["spark_master"].startswith("local")
    assert "local mode" in profile["display_name"]
    assert "localmesos cannot run Spark executors" in profile["description"]


def test_production_spark_profile_bounds_and_places_executors(monkeypatch):
    override = spark_override(monkeypatch, demo=False)["mesosspawner_override"]
    assert override["spark_master"].startswith("mesos://")
    assert override["spark_cores_max"] and override["spark_executor_constraints"]
    assert override["spark_mesos_native_library"].endswith("libmesos-java.so")
