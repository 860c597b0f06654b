"""Parsing the master's agent list and task list (pure): totals by role, attributes, tasks."""

from __future__ import annotations

import pytest

from mesosspawner.mesos.resources import ResourceError, ranges_of, scalar
from mesosspawner.mesos.state import agents_from_master, tasks_from_master

SLAVES = {
    "slaves": [
        {
            "id": "S1",
            "hostname": "spark-1",
            "resources": {"cpus": 18.0, "mem": 69632.0, "gpus": 0.0, "ports": "[31000-31999]"},
            "reserved_resources": {"spark": {"cpus": 16.0, "mem": 65536.0}},
            "unreserved_resources": {"cpus": 2.0, "mem": 4096.0, "ports": "[31000-31999]"},
            "attributes": {"rack": "r2", "zone": 12},
            "active": True,
        },
        {"id": "S2", "hostname": "gone-1", "resources": {"cpus": 4.0}, "active": False},
        {"id": "S3", "hostname": "gpu-1", "resources": {"cpus": 8.0, "gpus": 2.0}},
    ]
}


def test_agents_totals_keep_roles_ports_and_attributes():
    spark, gpu = agents_from_master(SLAVES)  # the inactive agent is left out
    assert spark.agent_id == "S1" and spark.hostname == "spark-1"
    assert scalar(spark.total, "cpus", "spark") == 16 and scalar(spark.total, "cpus", "*") == 2
    assert ranges_of(spark.total, "ports", "*") == ((31000, 31999),)
    assert {a.name: a.text() for a in spark.attributes} == {"rack": "r2", "zone": "12"}
    assert scalar(gpu.total, "gpus") == 2


def test_bad_agent_entry_names_the_agent():
    with pytest.raises(ResourceError, match="'S9'"):
        agents_from_master({"slaves": [{"id": "S9", "resources": {"cpus": "lots"}}]})


def test_tasks_of_one_framework_with_their_resources():
    state = {
        "frameworks": [
            {
                "id": "F1",
                "tasks": [
                    {
                        "id": "t1",
                        "slave_id": "S3",
                        "state": "TASK_RUNNING",
                        "role": "*",
                        "resources": {
                            "cpus": 0.5,
                            "mem": 64.0,
                            "gpus": 1.0,
                            "ports": "[31005-31005]",
                        },
                    }
                ],
            },
            {"id": "F2", "tasks": [{"id": "other", "slave_id": "S3", "resources": {}}]},
        ]
    }
    (task,) = tasks_from_master(state, "F1")
    assert (task.task_id, task.agent_id, task.state) == ("t1", "S3", "TASK_RUNNING")
    assert scalar(task.resources, "gpus") == 1 and scalar(task.resources, "cpus") == 0.5
