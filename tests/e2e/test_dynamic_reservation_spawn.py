"""A lab reserves its Spark machines for role ``spark`` with ``/master/reserve`` (a dynamic
reservation, issue 19 item 4); a person then starts the Spark profile through JupyterHub. On
localmesos and (``-k real``) on real Mesos 1.11.0: the notebook runs on the reserved agent, on
the reserved resources.

The agent ``spark-dyn`` reserves nothing itself (``--resources`` without roles): everything
the spark role gets there comes from the operator's reservation. The spawner used to drop the
reservation from the TaskInfo, which Mesos reads as a static one: TASK_ERROR, every Spark spawn.
"""

from __future__ import annotations

import json
import random
from urllib.parse import urlencode

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from tests.e2e.harness import master_state
from tests.e2e.mesos_env import agent_of, mesos_config, start_ready, tasks_by_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

_BASE = random.Random().randrange(45000, 49000, 100)
AGENTS = (
    {
        "hostname": "cpu-1",
        "resources": f"cpus:2;mem:2048;disk:10000;ports:[{_BASE}-{_BASE + 29}]",
        "attributes": "rack:r1",
    },
    {
        "hostname": "spark-dyn",
        "resources": f"cpus:3;mem:3072;disk:10000;ports:[{_BASE + 30}-{_BASE + 59}]",
        "attributes": "rack:r2;spark_cluster:prod",
    },
)
RESERVATION = [{"type": "DYNAMIC", "role": "spark", "principal": "lab-ops"}]


def _toml() -> str:
    return "".join(
        f'[[agent]]\nhostname = "{a["hostname"]}"\nresources = "{a["resources"]}"\n'
        f'attributes = "{a["attributes"]}"\n'
        for a in AGENTS
    )


@pytest.fixture(params=["localmesos", pytest.param("real", marks=pytest.mark.real_mesos)])
async def master_url(request, localmesos_proc) -> str:
    if request.param == "real":
        cluster = request.getfixturevalue("real_cluster")(agents=AGENTS)
        return cluster.master.url
    return (await localmesos_proc(_toml())).url


async def reserve(master: str, agent_id: str, resources: list[dict]) -> None:
    """What a lab's operator runs: ``curl -d slaveId=... -d resources=[...] .../reserve``."""
    body = urlencode({"slaveId": agent_id, "resources": json.dumps(resources)})
    response = await AsyncHTTPClient().fetch(
        HTTPRequest(f"{master}/master/reserve", method="POST", body=body), raise_error=False
    )
    assert response.code == 202, response.body


async def test_spark_profile_runs_on_resources_the_operator_reserved(
    master_url, hub_factory, homes, test_users
):
    state = await master_state(master_url)
    agent_id = next(a["id"] for a in state["slaves"] if a["hostname"] == "spark-dyn")
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

    hub = await hub_factory(mesos_config(master_url, homes)).launch()
    user = test_users[2]
    await hub.create_user(user.name)
    # The Spark profile: role spark, 2 cpus, 1 GB (tests/e2e/mesos_env.py).
    spark = await start_ready(hub, user.name, options={"profile": "spark"})
    code, _ = await hub.get_through_proxy(user.name, path="api/status")
    assert code == 200

    master = await master_state(master_url)
    task = tasks_by_id(master)[spark["task_id"]]
    assert task["state"] == "TASK_RUNNING"
    assert task["role"] == "spark"
    agent = agent_of(master, task)
    assert agent["hostname"] == "spark-dyn"
    assert agent["reserved_resources"]["spark"]["cpus"] == 2.5
    assert agent["used_resources"]["cpus"] == 2
    # The notebook took the reserved cpus: the unreserved half cpu is still there for others.
    assert agent["unreserved_resources"]["cpus"] == 0.5
