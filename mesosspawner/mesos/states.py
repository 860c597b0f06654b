"""Mesos task states (``TaskState`` in mesos.proto) and the groups the project reasons about."""

from __future__ import annotations

# A task in one of these never changes again (TASK_LOST may, if its agent comes back; Mesos
# still calls it terminal, and so do we).
TERMINAL_STATES = frozenset(
    {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_ERROR",
        "TASK_LOST",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
    }
)
ACTIVE_STATES = frozenset({"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING"})
# The launch has not got as far as running.
STARTING_STATES = frozenset({"TASK_STAGING", "TASK_STARTING"})
# Alive as far as Mesos knows: the notebook may be reached (or soon will be).
LIVE_STATES = STARTING_STATES | {"TASK_RUNNING"}
# Its agent is partitioned away (UNREACHABLE), or the master does not know the agent now
# (UNKNOWN: "the task may or may not still be running", mesos.proto): not reachable, and no kill
# reaches it, but Mesos may yet report it running again.
MAY_RETURN_STATES = frozenset({"TASK_UNREACHABLE", "TASK_UNKNOWN"})
# States in which the notebook cannot be reached, although Mesos may still bring it back.
STOPPED_STATES = TERMINAL_STATES | MAY_RETURN_STATES
