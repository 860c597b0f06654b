"""Which failed launches deserve another try, and what to tell the person when one does not.

Pure: reads a task's last status (reason and message) as real Mesos 1.11 reports it."""

from __future__ import annotations

import re

from .tasks import DRAINING_REASONS, TaskRecord

# An offer that was stale or rescinded when we accepted it: the launch is retried, whether the
# master noticed (SOURCE_MASTER) or the agent did (SOURCE_AGENT, e.g. after its own restart).
# So is a launch an agent refused or cut short because the operator is draining it.
RETRY_REASONS = frozenset({"REASON_INVALID_OFFERS", "REASON_RESOURCES_UNKNOWN"}) | DRAINING_REASONS
# The agent gave up waiting for the executor, most often because an image pull outlasted its
# --executor_registration_timeout. The image is usually there by then: one more try.
# Seen on Mesos 1.11: when the timeout strikes during the fetch or the pull, the agent destroys
# the container and reports REASON_CONTAINER_LAUNCH_FAILED with one of these messages instead.
REGISTRATION_TIMEOUT = "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
_CUT_SHORT = re.compile(
    r"destroyed while (fetching|pulling)|failed to fetch all uris.*(killed|signal)"
    r"|failed to launch container: discarded",
    re.I,
)
REGISTRATION_TIMEOUT_HINT = (
    "the Mesos agent gave up waiting for the container to start (often a slow image pull): "
    "an admin can raise the agent's --executor_registration_timeout (default 1mins)"
)


def registration_timed_out(record: TaskRecord) -> bool:
    """Did the agent cut the launch short at --executor_registration_timeout?"""
    if record.reason == REGISTRATION_TIMEOUT:
        return True
    return record.reason == "REASON_CONTAINER_LAUNCH_FAILED" and bool(
        _CUT_SHORT.search(record.message)
    )
