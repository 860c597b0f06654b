"""A lab reserves its Spark machines for role ``spark`` with ``/master/reserve`` (a dynamic
reservation, issue 19 item 4); a person then starts the Spark profile through JupyterHub. On
localmesos and on real Mesos 1.11.0 (``mesos_kind``): the notebook runs on the reserved agent, on
the reserved resources.

The agent ``spark-dyn`` reserves nothing itself (``--resources`` without roles): everything
the spark role gets there comes from the operator's reservation. The spawner used to drop the
reservation from the TaskInfo, which Mesos reads as a static one: TASK_ERROR, every Spark spawn.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.services.cluster import AgentSpec, port_block, release_port_block
from tests.services.e2e import agent_of, mesos_config, start_ready

RESERVATION = [{"type": "DYNAMIC", "role": "spark", "principal": "lab-ops"}]


@pytest.fixture
def agents():
    base = port_block()
    yield (
        AgentSpec("cpu-1", f"cpus:2;mem:2048;disk:10000;ports:[{base}-{base + 29}]", "rack:r1"),
        AgentSpec(
            "spark-dyn",
            f"cpus:3;mem:3072;disk:10000;ports:[{base + 30}-{base + 59}]",
            "rack:r2;spark_cluster:prod",
        ),
    )
    release_port_block(base)


async def reserve(master: str, agent_id: str, resources: list[dict]) -> None:
    """What a lab's operator runs: ``curl -d slaveId=... -d resources=[...] .../reserve``."""
    body = urlencode({"slaveId": agent_id, "resources": json.dumps(resources)})
    response = await AsyncHTTPClient().fetch(
        HTTPRequest(f"{master}/master/reserve", method="POST", body=body), raise_error=False
    )
    assert response.code == 202, response.body


async def test_spark_profile_runs_on_resources_the_operator_reserved(
    mesos_kind, clusters, agents, hub_factory, homes, user
):
    # Its own cluster: the reservation stays on the agent.
    cluster = clusters(mesos_kind, agents)
    master_url = cluster.master_url
    agent_id = next(a["id"] for a in await cluster.slaves() if a["hostname"] == "spark-dyn")
    await reserve(
        master_url,
        agent_id,
        [
            {
                "name": name,
                "type": "SCALAR",
                "scalar": {"value": value},
                "reservations": RESERVATION,
            }
            for name, value in (("cpus", 2.5), ("mem", 2048))
        ],
    )

    hub = await hub_factory(mesos_config(cluster.url, homes)).launch()
    await hub.create_user(user.name)
    # The Spark profile: role spark, 2 cpus, 1 GB (tests/services/e2e.py).
    spark = await start_ready(hub, user.name, options={"profile": "spark"})
    code, _ = await hub.get_through_proxy(user.name, path="api/status")
    assert code == 200

    master = await cluster.state()
    task = (await cluster.tasks())[spark["task_id"]]
    assert task["state"] == "TASK_RUNNING"
    assert task["role"] == "spark"
    agent = agent_of(master, task)
    assert agent["hostname"] == "spark-dyn"
    assert agent["reserved_resources"]["spark"]["cpus"] == 2.5
    assert agent["used_resources"]["cpus"] == 2
    # The notebook took the reserved cpus: the unreserved half cpu is still there for others.
    assert agent["unreserved_resources"]["cpus"] == 0.5
