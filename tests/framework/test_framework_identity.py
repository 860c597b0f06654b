"""The hub's identity to Mesos across restarts (``framework_identity``), driven through the real
MesosFramework by a recording fake client: a framework Mesos removed (failover_timeout passed),
a principal Mesos refuses, a user Mesos keeps."""

from __future__ import annotations

import asyncio
import json
import logging

from mesosspawner import placement, taskinfo
from mesosspawner.framework import LaunchFailed, LaunchRequest, MesosFramework, TaskRecord
from mesosspawner.mesos import events
from tests.services.fakes import RecordingClient, framework_config

MASTER = "http://master.invalid:5050"


class StoppableClient(RecordingClient):
    async def stop(self) -> None:
        self.calls.append(("stop", None))
        await super().stop()


def make_framework(tmp_path, **overrides) -> MesosFramework:
    overrides.setdefault("orphan_kill", False)
    config = framework_config(
        master=MASTER, name="fake", id_file=str(tmp_path / "fw.json"), **overrides
    )
    return MesosFramework(config, client_factory=StoppableClient)


def saved(tmp_path, **data) -> None:
    (tmp_path / "fw.json").write_text(json.dumps({"master": MASTER, **data}))


def request(key: str) -> LaunchRequest:
    spec = taskinfo.TaskSpec(task_id=f"jupyter.fake.{key}..n1", name=key, argv=("true",), env={})
    return LaunchRequest(needs=placement.Request(key=key, cpus=1, mem=128), spec=spec)


async def test_a_removed_framework_ends_its_tasks_with_the_reason_and_starts_anew(tmp_path):
    saved(tmp_path, framework_id="fw-old", principal=None, user="root")
    fw = make_framework(tmp_path, failover_timeout=3.0)
    assert fw.client.framework_id == "fw-old"
    fw.track(TaskRecord("t1", agent_id="a1", state="TASK_RUNNING"))  # a restarted hub's
    await fw.error(events.Error(message="Framework has been removed"))
    record = fw.task("t1")
    assert record.state == "TASK_KILLED" and record.reconciled
    assert "fw-old" in record.message and "failover_timeout (3 seconds" in record.message
    assert fw.client.framework_id is None
    assert not (tmp_path / "fw.json").exists()
    fw.client.subscribed = True
    await fw.subscribed(events.Subscribed(framework_id="fw-new"))
    assert json.loads((tmp_path / "fw.json").read_text())["framework_id"] == "fw-new"
    await fw.stop()


async def test_a_refused_principal_is_named_fails_spawns_at_once_and_stops_retrying(
    tmp_path, caplog
):
    saved(tmp_path, framework_id="fw-1", principal="hub-a", user="root")
    fw = make_framework(tmp_path, principal="hub-b")
    waiting = asyncio.ensure_future(fw.launch(request("alice")))
    await asyncio.sleep(0)
    caplog.set_level(logging.ERROR)
    await fw.error(events.Error(message="Changing framework's principal is not allowed."))
    assert ("stop", None) in fw.client.calls  # no more SUBSCRIBE attempts
    for failed in (waiting, fw.launch(request("bob"))):
        try:
            await asyncio.wait_for(failed, 1)
        except LaunchFailed as e:
            message = str(e)
        else:
            raise AssertionError("the launch did not fail")
        assert "'hub-a'" in message and "'hub-b'" in message, message
        assert str(tmp_path / "fw.json") in message
    assert any("'hub-a'" in r.getMessage() for r in caplog.records)
    assert await fw.never_fits(placement.Request(key="k", cpus=1, mem=1)) is None  # no wait
    await fw.stop()


async def test_a_user_mesos_keeps_is_named_and_stays_saved(tmp_path, caplog):
    saved(tmp_path, framework_id="fw-1", principal=None, user="root")
    fw = make_framework(tmp_path, user="nobody")
    fw.client.subscribed = True
    caplog.set_level(logging.WARNING)
    await fw.subscribed(events.Subscribed(framework_id="fw-1"))
    (warning,) = [r.getMessage() for r in caplog.records if "framework_user" in r.getMessage()]
    assert "'root'" in warning and "'nobody'" in warning, warning
    assert json.loads((tmp_path / "fw.json").read_text())["user"] == "root"
    await fw.stop()
