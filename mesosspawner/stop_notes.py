"""Why servers stopped, kept where a spawner object cannot keep it.

JupyterHub drops a spawner once its server is gone, so the person's next page (the spawn form,
the next start) learns why the last one ended from here; a kill the hub itself made (a GPU cull)
says why rather than showing a bare TASK_KILLED."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StopNotes:
    # (user, server) -> why its last task stopped, until that server is started again.
    last_stop: dict[tuple[str, str], str] = field(default_factory=dict)
    # task id -> why the hub killed it.
    kill_reasons: dict[str, str] = field(default_factory=dict)

    def last(self, user: str, server: str) -> str | None:
        """Why this server's last task stopped, if nobody has started it since."""
        return self.last_stop.get((user, server))

    def note(self, user: str, server: str, why: str) -> None:
        self.last_stop[(user, server)] = why

    def forget(self, user: str, server: str) -> None:
        self.last_stop.pop((user, server), None)

    def note_kill(self, task_id: str, why: str) -> None:
        self.kill_reasons[task_id] = why

    def kill_reason(self, task_id: str) -> str | None:
        return self.kill_reasons.get(task_id)
