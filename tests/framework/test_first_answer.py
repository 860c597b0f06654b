"""``first_answer.or_end``: a just-started notebook answers, or its task stops first (Mesos's
reason comes back at once), or neither within the budget (JupyterHub's own wait goes on)."""

from __future__ import annotations

import asyncio
import time

from tornado import httpserver, web

from mesosspawner import first_answer
from mesosspawner.framework import TaskRecord
from mesosspawner.testing.net import free_port


class Tasks:
    """A framework's task records as ``or_end`` reads them; ``set`` is a status update."""

    def __init__(self, record: TaskRecord) -> None:
        self.record = record
        self.changed = asyncio.Event()

    def task(self, task_id: str) -> TaskRecord | None:
        return self.record if task_id == self.record.task_id else None

    async def wait_change(self, task_id: str, timeout: float) -> None:
        self.changed.clear()
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except TimeoutError:
            pass

    def set(self, state: str, message: str = "") -> None:
        self.record.state, self.record.message = state, message
        self.changed.set()


async def test_a_task_that_stops_before_answering_is_returned_at_once():
    tasks = Tasks(TaskRecord("t1", state="TASK_RUNNING"))
    url = f"http://127.0.0.1:{free_port()}/user/alice/api"  # nothing listens
    asyncio.get_running_loop().call_later(
        0.3, tasks.set, "TASK_FAILED", "Command exited with status 3"
    )
    started = time.monotonic()
    ended = await first_answer.or_end(tasks, "t1", url, budget=30)
    assert time.monotonic() - started < 5
    assert ended is tasks.record and ended.message == "Command exited with status 3"


async def test_a_notebook_that_answers_is_none_and_so_is_a_silent_one_after_the_budget():
    tasks = Tasks(TaskRecord("t1", state="TASK_RUNNING"))

    class Api(web.RequestHandler):
        def get(self) -> None:
            self.set_status(403)  # JupyterHub takes any answer below 500

    port = free_port()
    server = httpserver.HTTPServer(web.Application([(r"/user/alice/api", Api)]))
    server.listen(port, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{port}/user/alice/api"
        assert await first_answer.or_end(tasks, "t1", url, budget=10) is None
    finally:
        server.stop()
    silent = f"http://127.0.0.1:{free_port()}/user/alice/api"
    started = time.monotonic()
    assert await first_answer.or_end(tasks, "t1", silent, budget=1) is None
    assert time.monotonic() - started < 5
