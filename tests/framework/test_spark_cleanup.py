"""The framework's SparkCleanup (``fw.spark``) against a scripted master (real HTTP, the shapes
Mesos 1.11 answers with): what it tears down when a notebook stops, when an orphan counts as
gone, and that it reads and tears down through the framework's own scheduler client (its
leader, its credentials). Real Mesos is the judge in tests/e2e/test_real_spark.py; here the
rules are pinned down."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import pytest

from mesosspawner.framework import MesosFramework
from mesosspawner.spark_cleanup import CleanupError
from mesosspawner.tasks import TaskRecord
from mesosspawner.testing.fake_master import FakeMaster
from tests.services.fakes import framework_config

HUB = "hub"
PREFIX = "jupyter.hub."


class ScriptedFrameworks:
    """The master's registered frameworks: ``/master/frameworks`` reads them, the operator
    API's TEARDOWN removes one (or is refused with 403, as without the ACL)."""

    def __init__(self, master: FakeMaster) -> None:
        self.master = master
        self.refuse = False
        self.set([])
        master.operator_answer = self.answer

    def set(self, frameworks: list[dict]) -> None:
        body = {"frameworks": frameworks, "completed_frameworks": []}
        self.master.operator["/master/frameworks"] = (200, {}, body)

    @property
    def ids(self) -> list[str]:
        return [f["id"] for f in self.master.operator["/master/frameworks"][2]["frameworks"]]

    @property
    def teardowns(self) -> list[str]:
        return [
            c["teardown"]["framework_id"]["value"]
            for c in self.master.operator_calls
            if c.get("type") == "TEARDOWN"
        ]

    def answer(self, call: dict) -> tuple[int, bytes]:
        if self.refuse:
            return 403, b"Forbidden"
        gone = call["teardown"]["framework_id"]["value"]
        left = self.master.operator["/master/frameworks"][2]["frameworks"]
        self.set([f for f in left if f["id"] != gone])
        return 200, b""


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedFrameworks]:
    master = FakeMaster().start()
    try:
        yield ScriptedFrameworks(master)
    finally:
        master.stop()


@pytest.fixture
async def fw(scripted) -> AsyncIterator[MesosFramework]:
    config = framework_config(
        master=scripted.master.url, hub_id=HUB, principal="hub", secret="s3cr3t"
    )
    framework = MesosFramework(config)
    await framework.ensure_started(timeout=10)
    yield framework
    await framework.stop()


def hub(*tasks, completed=()):
    return {"id": "hub", "name": "jupyterhub", "tasks": list(tasks),
            "completed_tasks": list(completed)}  # fmt: skip


def task(task_id, state="TASK_RUNNING", driver=None):
    labels = [{"key": "mesosspawner.spark-driver", "value": driver}] if driver else []
    return {"id": task_id, "state": state, "labels": labels}


def spark_fw(fid, name, pid="scheduler-1@10.0.0.9:40000"):
    return {"id": fid, "name": name, "pid": pid, "tasks": []}


async def test_stopping_a_notebook_tears_down_its_frameworks_and_waits_until_gone(scripted, fw):
    nb = "jupyter.hub.alice..n1"
    scripted.set(
        [
            hub(task(nb, driver="10.0.0.7:31003")),
            spark_fw("f1", nb),
            spark_fw("f2", "renamed by the notebook", pid="scheduler-2@10.0.0.7:31003"),
            spark_fw("f3", "jupyter.hub.bob..n2"),
        ]
    )
    assert await fw.spark.stop_notebook(nb, driver="10.0.0.7:31003") == ["f1", "f2"]
    assert scripted.teardowns == ["f1", "f2"]
    assert scripted.ids == ["hub", "f3"]
    # Through the framework's client: the operator API, with the hub's credentials.
    token = "Basic " + base64.b64encode(b"hub:s3cr3t").decode()
    assert {h.get("Authorization") for h in scripted.master.operator_headers} == {token}
    call = scripted.master.operator_calls[0]
    assert json.dumps(call) == json.dumps(
        {"type": "TEARDOWN", "teardown": {"framework_id": {"value": "f1"}}}
    )
    assert await fw.spark.stop_notebook("jupyter.hub.carol..n3") == []  # nothing to do


async def test_a_relaunched_notebooks_framework_is_its_own(scripted, fw):
    """A relaunch has a task id of its own (``<id>.1``): its Spark framework is named for it,
    and stopping it does not touch the first attempt's id, nor the reverse."""
    scripted.set([hub(task("jupyter.hub.a..n1.1")), spark_fw("f", "jupyter.hub.a..n1.1")])
    assert await fw.spark.stop_notebook("jupyter.hub.a..n1") == []
    assert await fw.spark.stop_notebook("jupyter.hub.a..n1.1") == ["f"]


async def test_an_orphan_whose_notebook_finished_goes_at_once(scripted, fw):
    scripted.set(
        [
            hub(
                task("jupyter.hub.alive..n1"),
                completed=[task("jupyter.hub.killed..n1", "TASK_KILLED")],
            ),
            spark_fw("alive", "jupyter.hub.alive..n1"),
            spark_fw("orphan", "jupyter.hub.killed..n1"),
            spark_fw("others", "jupyter.otherhub.x..n1"),  # another hub's: never this one's
        ]
    )
    assert await fw.spark.sweep() == ["orphan"]
    assert scripted.teardowns == ["orphan"]


async def test_a_notebook_the_master_does_not_list_must_stay_unlisted_for_two_sweeps(scripted, fw):
    """A new leading master learns its agents' tasks late: one unlisted sweep proves nothing."""
    scripted.set([hub(), spark_fw("f", "jupyter.hub.ghost..n1")])
    assert await fw.spark.sweep() == []
    assert await fw.spark.sweep() == ["f"]
    # ... unless the hub itself saw that notebook end.
    scripted.set([hub(), spark_fw("g", "jupyter.hub.ended..n1")])
    fw.tasks["jupyter.hub.ended..n1"] = TaskRecord("jupyter.hub.ended..n1", state="TASK_FAILED")
    assert await fw.spark.sweep() == ["g"]


async def test_a_refused_teardown_names_the_acl(scripted, fw):
    scripted.set([hub(task("jupyter.hub.a..n1")), spark_fw("f", "jupyter.hub.a..n1")])
    scripted.refuse = True
    with pytest.raises(CleanupError, match="403.*teardown_frameworks ACL"):
        await fw.spark.stop_notebook("jupyter.hub.a..n1")


async def test_a_master_that_serves_no_frameworks_endpoint_is_read_through_its_state(scripted, fw):
    """localmesos and older masters serve /master/state only."""
    del scripted.master.operator["/master/frameworks"]
    scripted.master.operator["/master/state"] = (200, {}, {"frameworks": [hub()]})
    assert await fw.spark.stop_notebook("jupyter.hub.a..n1") == []
    assert await fw.spark.sweep() == []
