"""The scheduler client against a scriptable fake master: calls on the wire, events in order,
acknowledgements, and every kind of misbehaviour the client must survive."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import subprocess

import pytest

from mesosspawner.mesos import events, recordio
from mesosspawner.mesos.client import MesosError, NotSubscribed, SchedulerClient
from mesosspawner.testing.fake_master import (
    Action,
    FakeMaster,
    chunk,
    event_chunk,
    offer,
    offers_event,
    status,
    update_event,
)
from mesosspawner.testing.net import free_port
from tests.services.fakes import FRAMEWORK_INFO, Recorder

LOGGER = "mesosspawner.mesos.client"


async def subscribed_client(make_client, master: FakeMaster, handler=None, **kwargs):
    handler = handler or Recorder(master.journal)
    client = make_client(master.url, handler, **kwargs)
    await client.start()
    await client.wait_subscribed(10)
    await handler.wait_for(lambda: handler.of("subscribed"))
    return client, handler


def warnings_about(caplog, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno >= logging.WARNING and text in r.getMessage()
    ]


# ---------------------------------------------------------------- subscribe and calls


async def test_subscribe_sends_framework_info_and_learns_the_framework_id(fake_master, make_client):
    client, handler = await subscribed_client(make_client, fake_master)

    call = fake_master.subscribes[0]
    assert call["type"] == "SUBSCRIBE"
    assert call["subscribe"]["framework_info"] == FRAMEWORK_INFO  # no id on a first subscription
    assert "framework_id" not in call
    assert fake_master.subscribe_headers[0]["Content-Type"] == "application/json"
    assert client.framework_id == fake_master.framework_id
    assert client.subscribed
    (event,) = handler.of("subscribed")
    assert event.framework_id == fake_master.framework_id
    assert client.heartbeat_interval == 15.0


async def test_an_existing_framework_id_is_resubscribed(fake_master, make_client):
    client = make_client(fake_master.url, Recorder())
    client.framework_id = "fw-existing"
    await client.start()
    await client.wait_subscribed(10)

    call = fake_master.subscribes[0]
    assert call["framework_id"] == {"value": "fw-existing"}
    assert call["subscribe"]["framework_info"]["id"] == {"value": "fw-existing"}
    assert client.framework_id == "fw-existing"


async def test_every_call_carries_stream_id_and_framework_id(fake_master, make_client):
    client, _ = await subscribed_client(make_client, fake_master)
    task = {"name": "t", "task_id": {"value": "t1"}, "agent_id": {"value": "a1"}}

    await client.launch(["o1"], [task], {"refuse_seconds": 7})
    await client.accept(["o2", "o3"], [{"type": "RESERVE", "reserve": {"resources": []}}])
    await client.decline(["o4"], {"refuse_seconds": 30})
    await client.revive(["gpu"])
    await client.revive()
    await client.suppress(["spark"])
    await client.kill("t1", "a1", {"grace_period": {"nanoseconds": 1000}})
    await client.kill("t2")
    await client.acknowledge("a1", "t1", "dXVpZA==")
    await client.reconcile([("t1", "a1"), ("t2", None)])
    await client.reconcile()
    await client.update_framework({**FRAMEWORK_INFO, "roles": ["*", "gpu"]})
    await client.send_message("a1", "e1", b"\x00hi")

    fid = {"value": fake_master.framework_id}
    for call, headers in zip(fake_master.calls, fake_master.call_headers, strict=True):
        assert call["framework_id"] == fid
        assert headers["Mesos-Stream-Id"] == fake_master.stream_id
        assert headers["Content-Type"] == "application/json"
    bodies = [(c["type"], c.get(c["type"].lower())) for c in fake_master.calls]
    assert bodies == [
        (
            "ACCEPT",
            {
                "offer_ids": [{"value": "o1"}],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
                "filters": {"refuse_seconds": 7},
            },
        ),
        (
            "ACCEPT",
            {
                "offer_ids": [{"value": "o2"}, {"value": "o3"}],
                "operations": [{"type": "RESERVE", "reserve": {"resources": []}}],
            },
        ),
        ("DECLINE", {"offer_ids": [{"value": "o4"}], "filters": {"refuse_seconds": 30}}),
        ("REVIVE", {"roles": ["gpu"]}),
        ("REVIVE", {}),
        ("SUPPRESS", {"roles": ["spark"]}),
        (
            "KILL",
            {
                "task_id": {"value": "t1"},
                "agent_id": {"value": "a1"},
                "kill_policy": {"grace_period": {"nanoseconds": 1000}},
            },
        ),
        ("KILL", {"task_id": {"value": "t2"}}),
        (
            "ACKNOWLEDGE",
            {"agent_id": {"value": "a1"}, "task_id": {"value": "t1"}, "uuid": "dXVpZA=="},
        ),
        (
            "RECONCILE",
            {
                "tasks": [
                    {"task_id": {"value": "t1"}, "agent_id": {"value": "a1"}},
                    {"task_id": {"value": "t2"}},
                ]
            },
        ),
        ("RECONCILE", {"tasks": []}),
        (
            "UPDATE_FRAMEWORK",
            {"framework_info": {**FRAMEWORK_INFO, "roles": ["*", "gpu"], "id": fid}},
        ),
        (
            "MESSAGE",
            {
                "agent_id": {"value": "a1"},
                "executor_id": {"value": "e1"},
                "data": base64.b64encode(b"\x00hi").decode(),
            },
        ),
    ]
    # A later re-subscription uses the updated FrameworkInfo.
    await fake_master.drop()
    await asyncio.sleep(0.05)
    await client.wait_subscribed(10)
    assert fake_master.subscribes[-1]["subscribe"]["framework_info"]["roles"] == ["*", "gpu"]


async def test_rejected_call_raises_with_the_masters_message(fake_master, make_client):
    client, _ = await subscribed_client(make_client, fake_master)
    fake_master.call_answer = lambda call: (400, b"Failed to validate scheduler::Call: bad offer")

    with pytest.raises(MesosError) as info:
        await client.decline(["o1"])
    assert info.value.code == 400
    assert "DECLINE" in str(info.value)
    assert "Failed to validate scheduler::Call: bad offer" in str(info.value)

    fake_master.call_answer = lambda call: (403, b"Framework is not subscribed")
    with pytest.raises(NotSubscribed):
        await client.revive()


async def test_calls_before_subscription_raise_not_subscribed(fake_master, make_client):
    fake_master.default = Action(kind="hang")
    client = make_client(fake_master.url, Recorder())
    await client.start()
    with pytest.raises(NotSubscribed, match="KILL"):
        await client.kill("t1", "a1")
    with pytest.raises(TimeoutError):
        await client.wait_subscribed(0.2)


async def test_stop_closes_the_stream_without_teardown_and_start_resubscribes(
    fake_master, make_client
):
    client, _ = await subscribed_client(make_client, fake_master)
    fid = client.framework_id

    await client.stop()
    assert not client.subscribed
    await asyncio.sleep(0.1)
    assert fake_master.open_streams == 0
    assert [c["type"] for c in fake_master.calls] == []

    await client.start()
    await client.wait_subscribed(10)
    assert fake_master.subscribes[-1]["framework_id"] == {"value": fid}


async def test_teardown_sends_teardown_and_stops(fake_master, make_client):
    client, _ = await subscribed_client(make_client, fake_master)
    await client.teardown()
    assert [c["type"] for c in fake_master.calls] == ["TEARDOWN"]
    assert not client.subscribed
    assert client.framework_id is None


# ---------------------------------------------------------------- events


async def test_events_reach_the_handler_in_order_even_when_it_is_slow(fake_master, make_client):
    class Slow(Recorder):
        async def offers(self, offers):
            await asyncio.sleep(0.2)  # later events must wait, not overtake
            await super().offers(offers)

    handler = Slow(fake_master.journal)
    await subscribed_client(make_client, fake_master, handler)
    await fake_master.send(
        offers_event([offer(1), offer(2)]),
        {"type": "RESCIND", "rescind": {"offer_id": {"value": "offer-1"}}},
        update_event(status("t1", ack=False)),
        {"type": "HEARTBEAT"},
        {
            "type": "MESSAGE",
            "message": {"agent_id": {"value": "a"}, "executor_id": {"value": "e"}, "data": "aGk="},
        },
        {"type": "FAILURE", "failure": {"agent_id": {"value": "a"}}},
        {"type": "ERROR", "error": {"message": "Framework has been removed"}},
    )
    await handler.wait_for(lambda: "error" in handler.names())

    assert handler.names() == [
        "subscribed",
        "offers",
        "rescind",
        "update",
        "message",
        "failure",
        "error",
    ]
    assert [o.id for o in handler.of("offers")[0].offers] == ["offer-1", "offer-2"]
    assert handler.of("rescind") == [events.Rescind("offer-1")]
    assert handler.of("message")[0].data == b"hi"
    assert handler.of("message")[0].executor_id == "e"
    assert handler.of("failure")[0].agent_id == "a"
    assert handler.of("error") == [events.Error("Framework has been removed")]


async def test_updates_with_uuid_are_acknowledged_after_the_handler_others_never(
    fake_master, make_client
):
    class Slow(Recorder):
        async def update(self, status):
            await asyncio.sleep(0.05)
            await super().update(status)

    handler = Slow(fake_master.journal)
    await subscribed_client(make_client, fake_master, handler)
    agent_update = status("t1", ack=True)
    master_update = status("t2", "TASK_LOST", ack=False)
    await fake_master.send(update_event(agent_update), update_event(master_update))
    await handler.wait_for(lambda: len(handler.of("update")) == 2)
    await asyncio.sleep(0.3)

    acks = [c for c in fake_master.calls if c["type"] == "ACKNOWLEDGE"]
    assert acks == [
        {
            "type": "ACKNOWLEDGE",
            "framework_id": {"value": fake_master.framework_id},
            "acknowledge": {
                "agent_id": {"value": "agent-1"},
                "task_id": {"value": "t1"},
                "uuid": agent_update["uuid"],
            },
        }
    ]
    journal = fake_master.journal
    assert journal.index("handled:t1") < journal.index("call:ACKNOWLEDGE:t1")


async def test_a_raising_handler_is_contained_and_updates_still_acknowledged(
    fake_master, make_client, caplog
):
    class Broken(Recorder):
        async def offers(self, offers):
            raise RuntimeError("bug in offers")

        async def update(self, status):
            await super().update(status)
            raise ValueError("bug in update")

    handler = Broken(fake_master.journal)
    client, _ = await subscribed_client(make_client, fake_master, handler)
    for i in range(3):
        await fake_master.send(offers_event([offer(i)]), update_event(status(f"t{i}")))
    await handler.wait_for(lambda: len(handler.of("update")) == 3)
    await asyncio.sleep(0.3)

    assert client.subscribed
    assert len(fake_master.subscribes) == 1  # the stream never dropped
    assert sorted(c["acknowledge"]["task_id"]["value"] for c in fake_master.calls) == [
        "t0",
        "t1",
        "t2",
    ]
    assert not [c for c in fake_master.calls if c["type"] == "TEARDOWN"]
    errors = [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.ERROR]
    assert len([r for r in errors if "offers" in r.getMessage()]) == 1  # logged once
    assert len([r for r in errors if "update" in r.getMessage()]) == 1
    assert errors[0].exc_info is not None


async def test_unknown_event_type_is_logged_once_and_skipped(fake_master, make_client, caplog):
    client, handler = await subscribed_client(make_client, fake_master)
    await fake_master.send(
        {"type": "SOMETHING_NEW", "something_new": {}},
        {"type": "SOMETHING_NEW", "something_new": {}},
        {"type": "INVERSE_OFFERS", "inverse_offers": {"inverse_offers": []}},
        update_event(status("t1", ack=False)),
    )
    await handler.wait_for(lambda: handler.of("update"))
    assert client.subscribed
    assert len(fake_master.subscribes) == 1
    assert len(warnings_about(caplog, "SOMETHING_NEW")) == 1
    assert not warnings_about(caplog, "INVERSE_OFFERS")


# ---------------------------------------------------------------- bad input and liveness


BAD_STREAMS = {
    "malformed record length": chunk(b"12x\n{}"),
    "non-JSON event": event_chunk({}).replace(b"{}", b"[}"),
    "event without a type": event_chunk({"offers": {}}),
    "malformed OFFERS event": event_chunk({"type": "OFFERS"}),
    "UPDATE without a status object": event_chunk({"type": "UPDATE", "update": {"status": None}}),
    "malformed chunk framing": b"zz\r\nabc\r\n",
}


@pytest.mark.parametrize("name", list(BAD_STREAMS))
async def test_bad_stream_is_logged_once_and_the_client_resubscribes(
    name, fake_master, make_client, caplog
):
    client, handler = await subscribed_client(make_client, fake_master)
    fid = client.framework_id
    await fake_master.send(BAD_STREAMS[name])
    await handler.wait_for(lambda: handler.of("disconnected"))
    await client.wait_subscribed(10)
    await fake_master.send(update_event(status("after", ack=False)))
    await handler.wait_for(lambda: handler.of("update"))

    assert len(fake_master.subscribes) == 2
    assert fake_master.subscribes[1]["framework_id"] == {"value": fid}
    assert "bad data" in handler.of("disconnected")[0]
    assert len(warnings_about(caplog, "bad data")) == 1


async def test_truncated_record_then_close_reconnects(fake_master, make_client, caplog):
    record = recordio.encode(json.dumps(update_event(status("t1"))).encode())
    fake_master.default = Action(after=[chunk(record[: len(record) // 2])], close_after=True)
    handler = Recorder()
    client = make_client(fake_master.url, handler)
    await client.start()
    await handler.wait_for(lambda: len(handler.of("disconnected")) >= 2)
    fake_master.default = Action()
    await handler.wait_for(lambda: len(handler.of("subscribed")) >= 3)

    assert not handler.of("update")  # half a record is never delivered
    assert [n for n in handler.names() if n != "subscribed"][:2] == ["disconnected"] * 2
    assert len(warnings_about(caplog, "ended the stream")) == 1  # logged once, not per attempt


async def test_master_answering_500_is_retried_and_logged_once(fake_master, make_client, caplog):
    for _ in range(3):
        fake_master.plan.append(Action(kind="status", code=500, body=b"Internal trouble"))
    client, handler = await subscribed_client(make_client, fake_master)

    assert len(fake_master.subscribes) == 4
    messages = warnings_about(caplog, "500")
    assert len(messages) == 1
    assert "Internal trouble" in messages[0]
    assert handler.names() == ["subscribed"]  # never subscribed before: no disconnected


async def test_a_recovering_master_is_retried_quickly_not_after_the_backoff(
    fake_master, make_client, caplog
):
    # A new leader answers 503 until it has read its registry. Eight refusals cost the old
    # exponential backoff (0.1 s doubling to 10 s) over 10 s; quick retries about 2 s.
    for _ in range(8):
        fake_master.plan.append(
            Action(kind="status", code=503, body=b"Master has not finished recovery")
        )
    loop = asyncio.get_running_loop()
    started = loop.time()
    client, handler = await subscribed_client(make_client, fake_master, backoff_max=10.0)
    took = loop.time() - started

    assert len(fake_master.subscribes) == 9
    assert took < 4.0, f"subscribed {took:.1f} s after the first of 8 refusals"
    assert len(warnings_about(caplog, "not finished recovery")) == 1


async def test_master_that_hangs_is_abandoned_after_request_timeout(
    fake_master, make_client, caplog
):
    fake_master.plan.append(Action(kind="hang"))
    fake_master.plan.append(Action(kind="hang"))
    client, _ = await subscribed_client(make_client, fake_master, request_timeout=0.3)

    assert len(fake_master.subscribes) == 3
    assert len(warnings_about(caplog, "no SUBSCRIBED event within 0.3 s")) == 1


async def test_silent_stream_is_dropped_after_missed_heartbeats(fake_master, make_client, caplog):
    fake_master.plan.append(Action(heartbeat=0.1))  # 3 x 0.1 s of silence and the client leaves
    # request_timeout (the allowance before SUBSCRIBED) is long: the heartbeats must rule after.
    client, handler = await subscribed_client(make_client, fake_master, request_timeout=30)
    await handler.wait_for(lambda: handler.of("disconnected"), timeout=5)
    await client.wait_subscribed(10)

    (reason,) = handler.of("disconnected")
    assert "no event (not even a heartbeat) for 0.3 s" in reason
    assert fake_master.subscribes[1]["framework_id"] == {"value": fake_master.framework_id}
    assert len(warnings_about(caplog, "heartbeat")) == 1


async def test_heartbeats_keep_a_quiet_stream_alive(fake_master, make_client):
    fake_master.plan.append(Action(heartbeat=0.1))
    client, handler = await subscribed_client(make_client, fake_master)
    for _ in range(8):
        await asyncio.sleep(0.1)
        await fake_master.send({"type": "HEARTBEAT"})
    assert client.subscribed
    assert "disconnected" not in handler.names()


async def test_redirect_to_the_leader_is_followed(fake_master, make_client):
    leader = FakeMaster().start()
    try:
        fake_master.default = Action(kind="redirect", location=f"//{leader.address}")
        client, _ = await subscribed_client(make_client, fake_master)
        await client.decline(["o1"])

        assert len(fake_master.subscribes) == 1
        assert len(leader.subscribes) == 1
        assert [c["type"] for c in leader.calls] == ["DECLINE"]  # calls go to the leader
        assert fake_master.calls == []
    finally:
        await _stop_all(make_client)
        leader.stop()


async def test_a_comma_list_is_tried_in_order(fake_master, make_client):
    dead = free_port()
    handler = Recorder()
    client = make_client(f"127.0.0.1:{dead},{fake_master.address}", handler)
    await client.start()
    await client.wait_subscribed(10)
    assert len(fake_master.subscribes) == 1


async def test_basic_auth_is_sent_and_secrets_never_logged(fake_master, make_client, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "s3cret-Pa55"
    fake_master.plan.append(Action(kind="status", code=401, body=b"Unauthorized"))
    client, _ = await subscribed_client(make_client, fake_master, principal="hub", secret=secret)
    await client.revive()

    token = base64.b64encode(f"hub:{secret}".encode()).decode()
    assert fake_master.subscribe_headers[-1]["Authorization"] == f"Basic {token}"
    assert fake_master.call_headers[0]["Authorization"] == f"Basic {token}"
    assert fake_master.subscribes[-1]["subscribe"]["framework_info"]["principal"] == "hub"
    assert secret not in caplog.text and token not in caplog.text
    assert secret not in repr(client.__dict__.get("framework_info"))


async def test_https_with_a_ca_file(tmp_path, make_client):
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    master = FakeMaster(ssl_ctx=context).start()
    try:
        handler = Recorder()
        client = make_client(master.url, handler, ca_file=str(cert))
        await client.start()
        await client.wait_subscribed(10)
        await client.revive()
        assert [c["type"] for c in master.calls] == ["REVIVE"]

        # Without the CA the certificate is refused and the client keeps retrying.
        untrusting = make_client(master.url, Recorder())
        await untrusting.start()
        with pytest.raises(TimeoutError):
            await untrusting.wait_subscribed(0.5)
    finally:
        await _stop_all(make_client)
        master.stop()


async def test_operator_reads_go_to_the_leader_with_the_clients_credentials_and_tls(
    tmp_path, make_client
):
    """The framework's reads of /master/slaves and /master/state use the scheduler client's
    master, credentials and CA file, and follow a 307 to a new leader as SUBSCRIBE does."""
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    master, leader = FakeMaster(ssl_ctx=context).start(), FakeMaster(ssl_ctx=context).start()
    try:
        client = make_client(
            master.url, Recorder(), ca_file=str(cert), principal="hub", secret="pw"
        )
        with pytest.raises(NotSubscribed, match="no leading Mesos master known yet"):
            await client.get_json("/master/slaves", 5)
        await client.start()
        await client.wait_subscribed(10)
        slaves = {"slaves": [{"id": "S1", "hostname": "cpu-1", "resources": {"cpus": 2.0}}]}
        master.operator["/master/slaves"] = (200, {}, slaves)
        assert await client.get_json("/master/slaves", 5) == slaves
        token = base64.b64encode(b"hub:pw").decode()
        assert master.operator_headers[-1]["Authorization"] == f"Basic {token}"
        assert await client.get_json("/master/nothing-here", 5) is None  # 404: not served
        master.operator["/master/flags"] = (403, {}, {"error": "not allowed"})
        with pytest.raises(MesosError, match="403") as refused:
            await client.get_json("/master/flags", 5)
        assert refused.value.code == 403
        # A leader change: the old master redirects, the read follows (credentials kept).
        path = "/master/state?framework_id=f1"
        location = f"//127.0.0.1:{leader.port}{path}"
        master.operator[path] = (307, {"Location": location}, None)
        leader.operator[path] = (200, {}, {"frameworks": []})
        assert await client.get_json(path, 5) == {"frameworks": []}
        assert leader.operator_headers[-1]["Authorization"] == f"Basic {token}"
    finally:
        await _stop_all(make_client)
        master.stop()
        leader.stop()


async def test_operator_calls_go_to_the_leader_with_the_clients_credentials(
    make_client,
):
    """POST /api/v1 (a TEARDOWN of another framework, as the Spark cleanup sends): the client's
    master and credentials, a 307 followed with the same call, a refusal's status kept."""
    master, leader = FakeMaster().start(), FakeMaster().start()
    try:
        client = make_client(master.url, Recorder(), principal="hub", secret="pw")
        call = {"type": "TEARDOWN", "teardown": {"framework_id": {"value": "spark-1"}}}
        with pytest.raises(NotSubscribed, match="TEARDOWN call: no leading Mesos master"):
            await client.operator_call(call, 5)
        await client.start()
        await client.wait_subscribed(10)
        assert await client.operator_call(call, 5) is None  # 202, no body
        assert master.operator_calls == [call]
        token = base64.b64encode(b"hub:pw").decode()
        assert master.operator_headers[-1]["Authorization"] == f"Basic {token}"
        # A leader change: the old master redirects, the call follows (credentials kept).
        location = f"//127.0.0.1:{leader.port}/api/v1"
        master.operator_answer = lambda c: (307, b"", {"Location": location})
        assert await client.operator_call(call, 5) is None
        assert leader.operator_calls == [call]
        assert leader.operator_headers[-1]["Authorization"] == f"Basic {token}"
        master.operator_answer = lambda c: (403, b"Forbidden")
        with pytest.raises(MesosError, match="403") as refused:
            await client.operator_call(call, 5)
        assert refused.value.code == 403 and "Forbidden" in refused.value.body
    finally:
        await _stop_all(make_client)
        master.stop()
        leader.stop()


async def _stop_all(make_client) -> None:
    """Stop clients before their master goes (the fixture stops them again harmlessly)."""
    # make_client's closure holds the list of clients it made.
    for cell in make_client.__closure__ or ():
        value = cell.cell_contents
        if isinstance(value, list) and all(isinstance(c, SchedulerClient) for c in value):
            for client in value:
                await client.stop()
