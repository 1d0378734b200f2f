"""Confluent wire format: magic byte 0, a 4-byte big-endian schema id, then the Avro body.

Any Confluent-compatible consumer (or Schema Registry client) reads what headrace writes.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import fastavro

MAGIC = 0
_HEADER = struct.Struct(">bI")


class WireFormatError(ValueError):
    """The bytes are not a Confluent wire-format frame."""


def frame(schema_id: int, body: bytes) -> bytes:
    return _HEADER.pack(MAGIC, schema_id) + body


def unframe(data: bytes) -> tuple[int, memoryview]:
    if len(data) < _HEADER.size:
        raise WireFormatError(f"frame too short ({len(data)} bytes)")
    magic, schema_id = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WireFormatError(f"bad magic byte {magic}")
    return schema_id, memoryview(data)[_HEADER.size :]


def encode(schema_id: int, schema: Any, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    buf.write(_HEADER.pack(MAGIC, schema_id))
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


def decode(data: bytes, schema: Any, reader: Any = None) -> dict[str, Any]:
    """Decode a frame written with `schema`, resolved to the `reader` schema when given.

    Avro schema resolution fills a field the writer lacked with its default and drops one the
    reader lacks, so a v1 frame reads as v2 and the other way round.
    """
    _, body = unframe(data)
    record = fastavro.schemaless_reader(io.BytesIO(body), schema, reader)
    assert isinstance(record, dict)
    return record
