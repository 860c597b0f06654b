"""Raw HTTP conformance of POST /api/v1/scheduler and the GET endpoints (status codes, headers
and bodies as Mesos 1.11's ``src/master/http.cpp`` answers them)."""

from __future__ import annotations

import asyncio
import json
import re

from tornado.httpclient import AsyncHTTPClient

from mesosspawner.localmesos.testing import framework_info, post


async def test_subscribe_streams_recordio_with_a_stream_id(connect, backend):
    s = connect()
    first = await s.subscribe(framework_info())
    assert s.status == 200
    assert s.headers["transfer-encoding"] == "chunked"
    assert s.headers["content-type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f-]{36}", s.stream_id)
    assert first["type"] == "SUBSCRIBED"
    sub = first["subscribed"]
    assert sub["framework_id"]["value"]
    assert sub["heartbeat_interval_seconds"] == backend.heartbeat_interval
    assert sub["master_info"]["address"]["ip"] == "127.0.0.1"
    assert sub["master_info"]["version"] == "1.11.0"
    # The raw bytes are RecordIO: "<decimal length>\n<json>".
    raw = s.raw_chunks[0]
    length, _, payload = raw.partition(b"\n")
    assert int(length) == len(payload)
    assert json.loads(payload)["type"] == "SUBSCRIBED"


async def test_heartbeats_arrive(connect):
    s = connect()
    await s.subscribe(framework_info())
    event = await s.next_event("HEARTBEAT", timeout=5)
    assert event == {"type": "HEARTBEAT"}


async def test_calls_after_subscribe_get_202_empty(connect):
    s = connect()
    await s.subscribe(framework_info())
    code, body = await s.call({"type": "REVIVE"})
    assert (code, body) == (202, "")


async def test_not_post_is_405(backend):
    code, body = await post(backend.url, "", {}, method="GET")
    assert code == 405
    assert "POST" in body


async def test_other_content_type_is_415(backend):
    body = json.dumps({"type": "SUBSCRIBE"})
    code, _ = await post(backend.url, body, {"Content-Type": "text/plain"})
    assert code == 415


async def test_protobuf_body(backend):
    # Real Mesos parses protobuf (this one is malformed: 400); localmesos speaks JSON only
    # (docs/localmesos-vs-mesos.md).
    code, _ = await post(backend.url, b"\x0a\x00", {"Content-Type": "application/x-protobuf"})
    assert code == {"real": 400, "localmesos": 415}[backend.kind]


async def test_malformed_json_is_400_and_master_keeps_serving(connect, backend):
    s = connect()
    await s.subscribe(framework_info())
    code, body = await post(backend.url, "{not json", {"Content-Type": "application/json"})
    assert code == 400
    assert "JSON" in body
    code, _ = await post(backend.url, "[1, 2]", {"Content-Type": "application/json"})
    assert code == 400
    code, _ = await post(backend.url, "{}", {"Content-Type": "application/json"})
    assert code == 400
    assert (await s.call({"type": "REVIVE"}))[0] == 202
    assert (await s.next_event("HEARTBEAT", timeout=5))["type"] == "HEARTBEAT"


async def test_subscribe_without_required_fields_is_400(backend):
    body = {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"name": "no user"}}}
    code, text = await post(backend.url, json.dumps(body), {"Content-Type": "application/json"})
    assert code == 400
    assert "user" in text


async def test_missing_stream_id_is_400(connect):
    s = connect()
    await s.subscribe(framework_info())
    code, text = await s.call({"type": "REVIVE"}, stream_id=None)
    assert code == 400
    assert "Mesos-Stream-Id" in text


async def test_wrong_stream_id_is_400(connect):
    s = connect()
    await s.subscribe(framework_info())
    code, text = await s.call({"type": "REVIVE"}, stream_id="not-the-stream")
    assert code == 400
    assert "not-the-stream" in text


async def test_unknown_framework_is_400(backend):
    # src/master/http.cpp: BadRequest("Framework cannot be found").
    body = {"type": "REVIVE", "framework_id": {"value": "nobody"}}
    code, text = await post(
        backend.url, json.dumps(body), {"Content-Type": "application/json", "Mesos-Stream-Id": "x"}
    )
    assert code == 400
    assert "Framework cannot be found" in text


async def test_call_without_framework_id_is_400(backend):
    code, text = await post(backend.url, '{"type": "REVIVE"}', {"Content-Type": "application/json"})
    assert code == 400
    assert "framework_id" in text


async def test_subscribe_with_stream_id_header_is_400(backend):
    body = json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info()}})
    headers = {"Content-Type": "application/json", "Mesos-Stream-Id": "abc"}
    code, _ = await post(backend.url, body, headers)
    assert code == 400


async def test_subscribe_not_accepting_json_is_406(backend):
    body = json.dumps({"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info()}})
    code, _ = await post(
        backend.url, body, {"Content-Type": "application/json", "Accept": "text/html"}
    )
    assert code == 406


async def test_acknowledge_with_bad_uuid_is_400(connect):
    s = connect()
    await s.subscribe(framework_info())
    ack = {"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "bm90LTE2LWJ5dGVz"}
    code, _ = await s.call({"type": "ACKNOWLEDGE", "acknowledge": ack})
    assert code == 400


async def test_disconnected_framework_is_403(connect, backend):
    s = connect()
    await s.subscribe(framework_info(failover_timeout=60))
    stream_id, fid = s.stream_id, s.framework_id
    await s.close()
    await asyncio.sleep(0.2)
    body = {"type": "REVIVE", "framework_id": {"value": fid}}
    code, text = await post(
        backend.url,
        json.dumps(body),
        {"Content-Type": "application/json", "Mesos-Stream-Id": stream_id},
    )
    assert code == 403
    assert "not subscribed" in text


async def test_unknown_fields_are_ignored(connect):
    s = connect()
    info = framework_info(future_field={"x": 1})
    first = await s.subscribe(info, another_unknown=True)
    assert first["type"] == "SUBSCRIBED"
    code, _ = await s.call({"type": "REVIVE", "revive": {}, "extra": [1, 2, 3]})
    assert code == 202


async def test_multi_role_with_legacy_role_gets_error_event(connect):
    s = connect()
    info = framework_info(role="x", roles=["x"], capabilities=[{"type": "MULTI_ROLE"}])
    first = await s.subscribe(info)
    assert first["type"] == "ERROR"
    assert "role" in first["error"]["message"]
    await asyncio.wait_for(s.closed.wait(), 5)


async def test_version_state_health(backend):
    client = AsyncHTTPClient()
    version = json.loads((await client.fetch(f"{backend.url}/version")).body)
    assert version["version"] == "1.11.0"
    health = await client.fetch(f"{backend.url}/health")
    assert health.code == 200
    for path in ("/master/state", "/state"):
        state = json.loads((await client.fetch(backend.url + path)).body)
        assert state["version"] == "1.11.0"
        assert {a["hostname"] for a in state["slaves"]} == {"agent-1", "gpu-1", "spark-1"}
    slaves = json.loads((await client.fetch(f"{backend.url}/master/slaves")).body)["slaves"]
    assert {a["hostname"] for a in slaves} == {"agent-1", "gpu-1", "spark-1"}
    gone = await client.fetch(f"{backend.url}/master/state.json", raise_error=False)
    assert gone.code == 404
    gpu = next(a for a in state["slaves"] if a["hostname"] == "gpu-1")
    assert gpu["resources"]["gpus"] == 2
    assert gpu["attributes"] == {"rack": "r1", "gpu_model": "a100"}
    spark = next(a for a in state["slaves"] if a["hostname"] == "spark-1")
    assert spark["reserved_resources"]["spark"]["cpus"] == 4
    assert spark["unreserved_resources"]["cpus"] == 1
    assert {"id", "hostname", "port", "used_resources", "offered_resources", "active"} <= set(gpu)


async def test_accept_with_task_missing_required_fields_is_400(connect):
    s = connect()
    await s.subscribe(framework_info())
    offers = await s.offers()
    task = {"name": "x", "agent_id": offers[0]["agent_id"], "command": {"value": "true"}}
    accept = {
        "offer_ids": [offers[0]["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [task]}}],
    }
    code, text = await s.call({"type": "ACCEPT", "accept": accept})
    assert code == 400
    assert "task_id" in text
    # The offer is untouched: the call never reached the master's accept logic.
    code, _ = await s.call({"type": "DECLINE", "decline": {"offer_ids": [offers[0]["id"]]}})
    assert code == 202
