"""The client's pure HTTP pieces: chunked decoding and pipelined responses, at any split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesosspawner.mesos import recordio
from mesosspawner.mesos.http import (
    ChunkedDecoder,
    RecordStream,
    ResponseParser,
    Target,
    parse_head,
)


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n" % len(p) + p + b"\r\n" for p in parts) + b"0\r\n\r\n"


def feed_split(decoder, data: bytes, cuts: list[int]) -> list:
    out = []
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for a, b in zip(points, points[1:], strict=False):
        result = decoder.feed(data[a:b])
        out.extend(result) if isinstance(result, list) else out.append(result)
    return out


@given(st.lists(st.binary(min_size=1, max_size=300), max_size=8), st.lists(st.integers(0, 5000)))
def test_chunked_decoding_is_independent_of_how_bytes_arrive(parts, cuts):
    decoder = ChunkedDecoder()
    data = chunked(*parts) + b"NEXT"
    assert b"".join(feed_split(decoder, data, cuts)) == b"".join(parts)
    assert decoder.done
    assert decoder.rest() == b"NEXT"


@pytest.mark.parametrize("data", [b"zz\r\n", b"5\r\nabcdeXX", b"1" * 2000])
def test_chunked_decoding_rejects_garbage(data):
    with pytest.raises(recordio.RecordIOError):
        ChunkedDecoder().feed(data)


records_strategy = st.lists(st.binary(max_size=200), min_size=1, max_size=10)


@given(records_strategy, st.lists(st.integers(0, 5000)), st.booleans(), st.integers(1, 50))
def test_record_stream_yields_the_records_whatever_the_splits_and_chunking(
    records, cuts, one_per_chunk, chunk_size
):
    body = b"".join(recordio.encode(r) for r in records)
    if one_per_chunk:  # how Mesos writes: the fast path
        data = chunked(*(recordio.encode(r) for r in records))
    else:  # records cut across chunks: the general path
        data = chunked(*(body[i : i + chunk_size] for i in range(0, len(body), chunk_size)))
    stream = RecordStream(chunked=True)
    assert feed_split(stream, data, cuts) == records
    assert stream.done


def test_record_stream_reports_garbage_at_once():
    with pytest.raises(recordio.RecordIOError):
        RecordStream(chunked=True).feed(b"zz\r\nabc\r\n")


RESPONSES = [
    (b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", (202, "Accepted", b"")),
    (
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\n"
        b"bad offer 1",
        (400, "Bad Request", b"bad offer 1"),
    ),
    (
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: //m2:5050\r\nTransfer-Encoding: chunked"
        b"\r\n\r\n" + chunked(b"not ", b"leader"),
        (307, "Temporary Redirect", b"not leader"),
    ),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", (204, "No Content", b"")),
]


@given(st.lists(st.sampled_from(RESPONSES), max_size=6), st.lists(st.integers(0, 2000)))
def test_pipelined_responses_come_out_in_order_whatever_the_splits(responses, cuts):
    data = b"".join(raw for raw, _ in responses)
    assert feed_split(ResponseParser(), data, cuts) == [parsed for _, parsed in responses]


def test_a_body_that_runs_until_close():
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.0 500 Oops\r\n\r\nmaster ") == []
    assert parser.feed(b"not recovered") == []
    assert parser.close() == (500, "Oops", b"master not recovered")


def test_parse_head_names_what_is_wrong():
    assert parse_head(b"HTTP/1.1 200 OK\r\nMesos-Stream-Id: abc\r\n\r\n") == (
        200,
        "OK",
        {"mesos-stream-id": "abc"},
    )
    with pytest.raises(ValueError, match="status line"):
        parse_head(b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(ValueError, match="header line"):
        parse_head(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")


def test_redirect_locations():
    target = Target.parse("https://m1.example:5050/mesos")
    assert target.redirect("//m2.example:5051").url == "https://m2.example:5051"
    assert target.redirect("//m3:5050/master/api/v1/scheduler").url == "https://m3:5050/master"
    assert target.redirect("http://m4:80/").url == "http://m4:80"
    with pytest.raises(ValueError, match="names no host"):
        target.redirect("/relative/only")
