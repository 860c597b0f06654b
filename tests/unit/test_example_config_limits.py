"""The example jupyterhub_config.py's limits per person (issue 15 item 9): named servers, and a
GPU ceiling a spawn over it is refused by."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub
from traitlets.config import Config

from mesosspawner import MesosSpawner
from mesosspawner.tasks import TaskRecord
from tests.services.example_config import load_example
from tests.services.fakes import StubFramework, fake_passwd


def example(monkeypatch, demo: bool) -> Config:
    return load_example(monkeypatch, demo)[0]


@pytest.mark.parametrize("demo", [False, True])
async def test_limits_per_person(monkeypatch, demo):
    c = example(monkeypatch, demo)
    assert c.JupyterHub.named_server_limit_per_user == 3
    fake_passwd(monkeypatch)
    fw = StubFramework()
    fw.runs = TaskRecord("t-1", agent_id="a-1", ip="10.0.0.7", ports=(31005,))
    monkeypatch.setattr(MesosSpawner, "framework", property(lambda self: fw))
    user = SimpleNamespace(name="alice", id=1, groups=[], url="/user/alice/")
    user.spawners = {"a": SimpleNamespace(active=True, task_gpus=2)}
    hub = Hub(ip="127.0.0.1", port=8081, base_url="/hub/")
    s = MesosSpawner(config=c, user=user, hub=hub, env_file_delivery=False)
    assert s.max_gpus_per_user == 2
    s.gpus = 1  # the GPU profile: the person's other server holds the 2 GPUs already
    with pytest.raises(Exception, match="max_gpus_per_user"):
        await asyncio.wait_for(s.start(), 5)
    assert not fw.launched
