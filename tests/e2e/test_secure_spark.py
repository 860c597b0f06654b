"""A Spark notebook on a SECURE real Mesos 1.11 cluster: JupyterHub -> MesosSpawner (the ``hub``
principal, its secret in a file) -> the spark-notebook image, whose PySpark 3.5 driver registers
as the ``spark`` principal (``spark_principal``; ``spark_secret`` reaches it as
SPARK_MESOS_SECRET through the one-time env file) with framework authentication (CRAM-MD5 in
libmesos), HTTP authentication and ACLs (``permissive: false``) on, and runs its executors as
the notebook's user. Stopping the server tears the Spark framework down with the hub's own
credentials (the ``teardown_frameworks`` ACL lets ``hub`` tear down the ``spark`` principal's
frameworks only). The master's /master/state, read as the operator, is the judge: it shows no
secret.

Real Mesos only (Spark drives Mesos through libmesos, which localmesos does not speak), like
tests/e2e/test_real_spark.py, whose cluster, images and job this test shares.
"""

from __future__ import annotations

import json
import time

import pytest

from mesosspawner.testing import spark as spark_testing
from tests.services.e2e import docker_notebook_config, secure_mesos_config, start_ready
from tests.services.spark import (
    CORES_MAX,
    JOB,
    SUM,
    check_executors,
    print_spark_view,
    running_tasks,
    spark_frameworks,
    spark_profile_config,
)

# A fresh machine builds and pushes the Spark images inside the fixtures (minutes).
pytestmark = pytest.mark.timeout(1800)


async def test_spark_job_on_a_secure_cluster_as_the_spark_principal(
    spark_images, spark_cluster_factory, hub_factory, homes, new_user
):
    library = spark_testing.java_library()
    assert library is not None, (
        "lib/libmesos-java.so missing: run MESOS_BUNDLE=... bash scripts/install-mesos.sh"
    )
    cluster = spark_cluster_factory(secure=True)
    security = cluster.security
    spark_secret = security.spark.secret
    spark_master = "mesos://" + cluster.url.removeprefix("http://")
    config = secure_mesos_config(
        cluster,
        homes,
        docker_notebook_config(spark_images["spark-notebook"], homes)
        + spark_profile_config(spark_images, spark_master, library)
        + f"""
c.MesosSpawner.spark_principal = {security.spark.principal!r}
c.MesosSpawner.spark_secret = {spark_secret!r}
""",
    )
    t0 = time.monotonic()
    hub = await hub_factory(config, start_timeout=300).launch()
    person = await new_user()
    await hub.create_user(person.name)
    task_id = (await start_ready(hub, person.name, options={"profile": "spark"}))["task_id"]
    print(f"Spark notebook ready on the secure cluster in {time.monotonic() - t0:.0f} s")

    # The job, through the kernel API: the driver authenticated as `spark`, or nothing runs.
    t0 = time.monotonic()
    raw = await hub.run_cell(person.name, JOB)
    print(f"job done in {time.monotonic() - t0:.0f} s")
    result = json.loads(raw.strip().splitlines()[-1])
    print(f"{person.name}: {result}")
    assert result["total"] == SUM
    assert result["squares"] == [0, 1, 4, 9, 16]
    assert result["name"] == task_id
    assert result["workers"] == [[person.uid, person.gid, result["driver_python"]]]
    assert result["executors"] == CORES_MAX

    # The master's view (as the operator): the Spark framework is the `spark` principal's,
    # its executors ran as the person on the Spark machine, the hub's is `hub`'s.
    state = await cluster.state()
    print_spark_view(state, [task_id])
    spark_agent = next(a for a in state["slaves"] if a["hostname"] == "localhost")
    check_executors(state, task_id, person, spark_agent, spark_images)
    (spark_fw,) = spark_frameworks(state, task_id)
    assert spark_fw["principal"] == security.spark.principal
    hub_fw = next(fw for fw in state["frameworks"] if task_id in {t["id"] for t in fw["tasks"]})
    assert hub_fw["principal"] == security.hub.principal
    # The Spark secret is nowhere the master shows (the notebook's TaskInfo included: it
    # travelled in the one-time env file), nor in the hub's log.
    notebook_task = next(t for t in hub_fw["tasks"] if t["id"] == task_id)
    assert spark_secret not in json.dumps(notebook_task)
    assert spark_secret not in json.dumps(state)
    assert spark_secret not in hub.log_text()

    # Stopping the server: the hub tears the Spark framework down with its own credentials
    # (the driver, stopped at once, never unregisters it), and no executor is left running.
    await hub.stop_server(person.name)
    state = await cluster.state()
    assert spark_frameworks(state, task_id) == []
    gone = {fw["id"]: fw for fw in state["completed_frameworks"]}
    assert spark_fw["id"] in gone
    assert all(t["state"] != "TASK_RUNNING" for t in gone[spark_fw["id"]]["completed_tasks"])
    assert not any(t["framework_id"] == spark_fw["id"] for t in running_tasks(state))
    assert f"Tore down Spark framework {spark_fw['id']}" in hub.log_text()
    assert spark_secret not in json.dumps(state) + hub.log_text()
