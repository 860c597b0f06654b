"""mesos/recordio.py: framing, and incremental decoding across arbitrary chunk boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesosspawner.mesos.recordio import Decoder, RecordIOError, encode


def test_encode_is_decimal_length_newline_bytes():
    assert encode(b'{"type":"HEARTBEAT"}') == b'20\n{"type":"HEARTBEAT"}'
    assert encode(b"") == b"0\n"


@settings(deadline=None)  # a loaded CI machine must not fail a property
@given(
    st.lists(st.binary(max_size=300), max_size=20),
    st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=50),
)
def test_any_chunking_yields_the_same_records(records, cuts):
    stream = b"".join(encode(r) for r in records)
    decoder = Decoder()
    out: list[bytes] = []
    pos = 0
    i = 0
    while pos < len(stream):
        size = cuts[i % len(cuts)]
        out.extend(decoder.feed(stream[pos : pos + size]))
        pos += size
        i += 1
    assert out == records
    assert decoder.pending == 0


@settings(deadline=None)  # a loaded CI machine must not fail a property
@given(st.lists(st.binary(max_size=50), min_size=1, max_size=10))
def test_byte_at_a_time(records):
    decoder = Decoder()
    out = []
    for b in b"".join(encode(r) for r in records):
        out.extend(decoder.feed(bytes([b])))
    assert out == records


def test_records_containing_newlines_and_digits():
    data = [b"12\n34\n", b"\n", b"0"]
    decoder = Decoder()
    assert decoder.feed(b"".join(encode(r) for r in data)) == data


@pytest.mark.parametrize("bad", [b"abc\n", b"-1\n", b"12345678901234567890"])
def test_invalid_prefix_raises(bad):
    with pytest.raises(RecordIOError):
        Decoder().feed(bad)


def test_oversized_record_raises():
    with pytest.raises(RecordIOError):
        Decoder(max_record_size=10).feed(b"11\n")
