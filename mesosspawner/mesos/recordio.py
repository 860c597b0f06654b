"""RecordIO framing as used by the Mesos v1 streaming APIs: ``<decimal length>\\n<bytes>``.

Pure: the decoder keeps only the bytes it has been fed, so it can be driven by any transport and
tested across arbitrary chunk boundaries.
"""

from __future__ import annotations

# A length prefix longer than this cannot be a sane record (Mesos records are far below 1 GiB).
_MAX_PREFIX_DIGITS = 10


class RecordIOError(ValueError):
    """The stream is not valid RecordIO; the connection must be dropped and re-established."""


def encode(record: bytes) -> bytes:
    """Frame one record."""
    return b"%d\n" % len(record) + record


class Decoder:
    """Incremental RecordIO decoder: ``feed`` chunks, get back the complete records."""

    __slots__ = ("_buffer", "_length", "max_record_size")

    def __init__(self, max_record_size: int = 256 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._length: int | None = None
        self.max_record_size = max_record_size

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet form a complete record."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        records: list[bytes] = []
        buf = self._buffer
        pos = 0
        while True:
            if self._length is None:
                newline = buf.find(b"\n", pos)
                if newline < 0:
                    if len(buf) - pos > _MAX_PREFIX_DIGITS:
                        raise RecordIOError(
                            f"record length prefix too long: {bytes(buf[pos : pos + 20])!r}"
                        )
                    break
                prefix = bytes(buf[pos:newline])
                if not prefix.isdigit():
                    raise RecordIOError(f"invalid record length prefix {prefix[:20]!r}")
                length = int(prefix)
                if length > self.max_record_size:
                    raise RecordIOError(
                        f"record of {length} bytes exceeds the limit {self.max_record_size}"
                    )
                self._length = length
                pos = newline + 1
            if len(buf) - pos < self._length:
                break
            end = pos + self._length
            records.append(bytes(buf[pos:end]))
            pos = end
            self._length = None
        if pos:
            del buf[:pos]
        return records
