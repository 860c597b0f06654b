"""mesos/events: a decoded record becomes one frozen, typed event."""

import pytest

from mesosspawner.mesos import events
from mesosspawner.mesos.resources import scalar


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
    good = {
        "id": {"value": "o1"},
        "agent_id": {"value": "a1"},
        "hostname": "cpu-1",
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}}],
    }
    offers = events.parse(
        {"type": "OFFERS", "offers": {"offers": [good, {"id": {"value": "o2"}}, "junk"]}}
    )
    (offer,) = offers.offers  # parsed once, typed: nobody reads the dict again
    assert (offer.id, offer.agent_id, offer.hostname, offer.raw) == ("o1", "a1", "cpu-1", good)
    assert [r.name for r in offer.resources] == ["cpus"]
    # One unreadable offer is declined by id; it never costs the stream or the other offers.
    assert [offer_id for offer_id, _ in offers.malformed] == ["o2", ""]
    assert "agent_id" in offers.malformed[0][1]
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
    assert events.parse({"type": "UPDATE_OPERATION_STATUS"}) is None
    assert events.parse({"type": "SOMETHING_NEW"}) is None
    assert events.known("UPDATE_OPERATION_STATUS") and events.known("UPDATE")
    assert events.known("INVERSE_OFFERS") and events.known("RESCIND_INVERSE_OFFER")
    assert not events.known("SOMETHING_NEW")


WINDOW = {"start": {"nanoseconds": 1_800_000_000_000_000_000}, "duration": {"nanoseconds": 3600e9}}


def test_inverse_offers_as_real_mesos_sends_them():
    """The event as real Mesos 1.11 sent it for a machine in a maintenance schedule."""
    event = {
        "type": "INVERSE_OFFERS",
        "inverse_offers": {
            "inverse_offers": [
                {
                    "id": {"value": "m-O2"},
                    "url": {
                        "scheme": "http",
                        "address": {"hostname": "m-a", "ip": "127.0.0.1", "port": 39563},
                        "path": "/slave(1)",
                    },
                    "framework_id": {"value": "f-0000"},
                    "agent_id": {"value": "m-S0"},
                    "unavailability": WINDOW,
                }
            ]
        },
    }
    (offer,) = events.parse(event).inverse_offers
    assert offer == events.InverseOffer(
        "m-O2", "m-S0", "m-a", events.Unavailability(1_800_000_000.0, 3600.0)
    )
    assert offer.unavailability.end == 1_800_003_600.0
    rescind = {
        "type": "RESCIND_INVERSE_OFFER",
        "rescind_inverse_offer": {"inverse_offer_id": {"value": "m-O2"}},
    }
    assert events.parse(rescind) == events.RescindInverseOffer("m-O2")


def test_an_inverse_offer_without_unavailability_is_malformed():
    event = {
        "type": "INVERSE_OFFERS",
        "inverse_offers": {"inverse_offers": [{"id": {"value": "x"}}]},
    }
    with pytest.raises(events.MalformedEvent, match="unavailability"):
        events.parse(event)


def test_an_offer_carries_its_machines_unavailability():
    offer = {
        "id": {"value": "o1"},
        "agent_id": {"value": "a1"},
        "hostname": "m-a",
        "resources": [],
        "unavailability": {"start": {"nanoseconds": 5_000_000_000}},
    }
    parsed = events.offer_from_json(offer)
    assert parsed.unavailability == events.Unavailability(5.0, None)
    assert parsed.unavailability.end is None
    assert events.offer_from_json({**offer, "unavailability": None}).unavailability is None
    with pytest.raises(ValueError, match="unavailability"):
        events.offer_from_json({**offer, "unavailability": {"start": {}}})


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


def test_offer_from_json():
    data = {
        "id": {"value": "off-1"},
        "framework_id": {"value": "fw"},
        "agent_id": {"value": "ag-1"},
        "hostname": "spark-1",
        "url": {
            "scheme": "http",
            "address": {"hostname": "spark-1", "ip": "10.0.0.5", "port": 5051},
        },
        "allocation_info": {"role": "spark"},
        "resources": [
            {
                "name": "cpus",
                "type": "SCALAR",
                "scalar": {"value": 16},
                "role": "spark",
                "allocation_info": {"role": "spark"},
            },
            {
                "name": "cpus",
                "type": "SCALAR",
                "scalar": {"value": 2},
                "role": "*",
                "allocation_info": {"role": "spark"},
            },
            {
                "name": "ports",
                "type": "RANGES",
                "ranges": {"range": [{"begin": 31000, "end": 31005}]},
                "role": "*",
            },
            {
                "name": "disk",
                "type": "SCALAR",
                "scalar": {"value": 100},
                "role": "spark",
                "disk": {
                    "persistence": {"id": "v1"},
                    "volume": {"container_path": "data", "mode": "RW"},
                },
            },
        ],
        "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r2"}}],
    }
    o = events.offer_from_json(data)
    assert (o.id, o.agent_id, o.hostname, o.ip, o.allocation_role) == (
        "off-1",
        "ag-1",
        "spark-1",
        "10.0.0.5",
        "spark",
    )
    assert scalar(o.resources, "cpus", "spark") == 16
    assert scalar(o.resources, "cpus", "*") == 2
    assert scalar(o.resources, "disk") == 0  # a persistent volume is not ours to take
    assert o.attributes[0].text() == "r2"
