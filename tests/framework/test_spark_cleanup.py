"""SparkCleanup against a scripted master (real HTTP, the shapes Mesos 1.11 answers with):
what it tears down when a notebook stops, and when an orphan counts as gone. Real Mesos is the
judge in tests/e2e_real/test_real_spark.py; here the timing rules are pinned down."""

from __future__ import annotations

import base64
import json

import pytest
from tornado import httpserver, web

from mesosspawner.spark_cleanup import CleanupError, MasterAccess, SparkCleanup
from tests.services.net import free_port

PREFIX = "jupyter.hub."


class FakeMaster:
    """/master/frameworks and the operator API's TEARDOWN, over a list of frameworks."""

    def __init__(self) -> None:
        self.frameworks: list[dict] = []
        self.teardowns: list[str] = []
        self.auth: list[str | None] = []
        self.refuse = False

    def app(self) -> web.Application:
        master = self

        class Frameworks(web.RequestHandler):
            def get(self):
                master.auth.append(self.request.headers.get("Authorization"))
                self.write({"frameworks": master.frameworks, "completed_frameworks": []})

        class Operator(web.RequestHandler):
            def post(self):
                if master.refuse:
                    self.set_status(403)
                    self.finish("Forbidden")
                    return
                call = json.loads(self.request.body)
                assert call["type"] == "TEARDOWN"
                fid = call["teardown"]["framework_id"]["value"]
                master.teardowns.append(fid)
                master.frameworks = [f for f in master.frameworks if f["id"] != fid]

        return web.Application([("/master/frameworks", Frameworks), ("/api/v1", Operator)])


@pytest.fixture
async def master():
    fake = FakeMaster()
    port = free_port()
    server = httpserver.HTTPServer(fake.app())
    server.listen(port, "127.0.0.1")
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    server.stop()


def cleanup_for(master: FakeMaster, known: dict | None = None, **access) -> SparkCleanup:
    return SparkCleanup(MasterAccess(lambda: master.url, **access), PREFIX, (known or {}).get)


def hub(*tasks, completed=()):
    return {"id": "hub", "name": "jupyterhub", "tasks": list(tasks),
            "completed_tasks": list(completed)}  # fmt: skip


def task(task_id, state="TASK_RUNNING", driver=None):
    labels = [{"key": "mesosspawner.spark-driver", "value": driver}] if driver else []
    return {"id": task_id, "state": state, "labels": labels}


def spark_fw(fid, name, pid="scheduler-1@10.0.0.9:40000"):
    return {"id": fid, "name": name, "pid": pid, "tasks": []}


async def test_stopping_a_notebook_tears_down_its_frameworks_and_waits_until_gone(master):
    nb = "jupyter.hub.alice..n1"
    master.frameworks = [
        hub(task(nb, driver="10.0.0.7:31003")),
        spark_fw("f1", nb),
        spark_fw("f2", "renamed by the notebook", pid="scheduler-2@10.0.0.7:31003"),
        spark_fw("f3", "jupyter.hub.bob..n2"),
    ]
    cleanup = cleanup_for(master, principal="hub", secret="s3cr3t")
    assert await cleanup.stop_notebook(nb, driver="10.0.0.7:31003") == ["f1", "f2"]
    assert master.teardowns == ["f1", "f2"]
    assert [f["id"] for f in master.frameworks] == ["hub", "f3"]
    assert master.auth[0] == "Basic " + base64.b64encode(b"hub:s3cr3t").decode()
    assert await cleanup.stop_notebook("jupyter.hub.carol..n3") == []  # nothing to do


async def test_an_orphan_whose_notebook_finished_goes_at_once(master):
    master.frameworks = [
        hub(
            task("jupyter.hub.alive..n1"), completed=[task("jupyter.hub.killed..n1", "TASK_KILLED")]
        ),  # fmt: skip
        spark_fw("alive", "jupyter.hub.alive..n1"),
        spark_fw("orphan", "jupyter.hub.killed..n1"),
    ]
    assert await cleanup_for(master).sweep() == ["orphan"]
    assert master.teardowns == ["orphan"]


async def test_a_notebook_the_master_does_not_list_must_stay_unlisted_for_two_sweeps(master):
    """A new leading master learns its agents' tasks late: one unlisted sweep proves nothing."""
    master.frameworks = [hub(), spark_fw("f", "jupyter.hub.ghost..n1")]
    cleanup = cleanup_for(master)
    assert await cleanup.sweep() == []
    assert await cleanup.sweep() == ["f"]
    # ... unless the hub itself saw that notebook end.
    master.frameworks = [hub(), spark_fw("g", "jupyter.hub.ended..n1")]
    known = cleanup_for(master, {"jupyter.hub.ended..n1": "TASK_FAILED"})
    assert await known.sweep() == ["g"]


async def test_a_refused_teardown_names_the_acl(master):
    master.frameworks = [hub(task("jupyter.hub.a..n1")), spark_fw("f", "jupyter.hub.a..n1")]
    master.refuse = True
    with pytest.raises(CleanupError, match="teardown_frameworks ACL"):
        await cleanup_for(master).stop_notebook("jupyter.hub.a..n1")
