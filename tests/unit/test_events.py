"""mesos/events: a decoded record becomes one frozen, typed event."""

import pytest

from mesosspawner.mesos import events


def test_update_becomes_a_task_status():
    raw = {
        "task_id": {"value": "t1"},
        "agent_id": {"value": "a1"},
        "state": "TASK_FAILED",
        "reason": "REASON_COMMAND_EXECUTOR_FAILED",
        "message": "exit 1",
        "source": "SOURCE_EXECUTOR",
        "uuid": "dXVpZA==",
        "healthy": False,
    }
    status = events.parse({"type": "UPDATE", "update": {"status": raw}})
    assert status == events.TaskStatus(
        task_id="t1",
        agent_id="a1",
        state="TASK_FAILED",
        reason="REASON_COMMAND_EXECUTOR_FAILED",
        message="exit 1",
        source="SOURCE_EXECUTOR",
        uuid="dXVpZA==",
        healthy=False,
    )
    assert status.raw is raw


def test_a_master_status_has_no_uuid_and_defaults():
    status = events.parse({"type": "UPDATE", "update": {"status": {"task_id": {"value": "t"}}}})
    assert status.uuid is None
    assert status.state == "TASK_UNKNOWN"
    assert status.agent_id is None and status.reason == "" and status.healthy is None


def test_other_event_types():
    sub = events.parse(
        {
            "type": "SUBSCRIBED",
            "subscribed": {"framework_id": {"value": "f"}, "heartbeat_interval_seconds": 5},
        }
    )
    assert (sub.framework_id, sub.heartbeat_interval, sub.master_info) == ("f", 5.0, None)
    offers = events.parse({"type": "OFFERS", "offers": {"offers": [{"id": {"value": "o"}}]}})
    assert offers == events.Offers(({"id": {"value": "o"}},))
    rescind = {"type": "RESCIND", "rescind": {"offer_id": {"value": "o"}}}
    assert events.parse(rescind) == events.Rescind("o")
    assert events.parse({"type": "HEARTBEAT"}) == events.Heartbeat()
    error = {"type": "ERROR", "error": {"message": "gone"}}
    assert events.parse(error) == events.Error("gone")
    failed = {"type": "FAILURE", "failure": {"agent_id": {"value": "a"}, "status": 1}}
    failure = events.parse(failed)
    assert (failure.agent_id, failure.executor_id, failure.status) == ("a", None, 1)
    message = events.parse(
        {"type": "MESSAGE", "message": {"agent_id": {"value": "a"}, "data": "aGk="}}
    )
    assert message.data == b"hi"


def test_ignored_and_unknown_types_are_none():
    assert events.parse({"type": "INVERSE_OFFERS"}) is None
    assert events.parse({"type": "SOMETHING_NEW"}) is None
    assert events.known("INVERSE_OFFERS") and events.known("UPDATE")
    assert not events.known("SOMETHING_NEW")


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"type": 3},
        {"type": "UPDATE", "update": {"status": "x"}},
        {"type": "OFFERS", "offers": {"offers": {}}},
        {"type": "RESCIND", "rescind": {}},
        {"type": "SUBSCRIBED", "subscribed": {}},
    ],
)
def test_malformed_events_say_so(record):
    with pytest.raises(events.MalformedEvent):
        events.parse(record)


def test_events_are_frozen():
    with pytest.raises(AttributeError):
        events.Rescind("o").offer_id = "p"
