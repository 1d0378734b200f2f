"""Avro binary encoding and decoding of whole Arrow columns: numpy and Arrow kernels, no Python
per record.

fastavro encodes one record per call (tens of microseconds in our profile, the validator's largest
cost). Avro's binary encoding of a flat record is the concatenation of its fields' encodings, so a
batch can be encoded field by field: each column becomes a binary array of per-row encodings
(zigzag varints for ints and times, little-endian IEEE for floats, length-prefixed bytes for
strings, a branch index before a union's value) and Arrow joins them row-wise in C++. Records
come out byte-identical to fastavro's (tests/unit/test_avro_columns.py checks it). Decoding
walks the same layout the other way, all records of a batch advancing field by field together.
Only flat records of primitive types, timestamps and ["null", X] unions are supported: the
transaction schema's shape (a new field type needs its encoder and decoder here).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from headrace.codec import wire_format

_MAX_VARINT = 10  # a 64-bit zigzag varint takes at most 10 bytes
_FRAME_HEADER = 5  # magic byte + 4-byte schema id
_ID_WEIGHTS = np.array([1 << 24, 1 << 16, 1 << 8, 1], dtype=np.int64)


def arrow_type(avro_type: Any) -> tuple[pa.DataType, bool]:
    """(Arrow type, nullable) of a flat Avro field type."""
    if isinstance(avro_type, list):
        (inner,) = [t for t in avro_type if t != "null"]
        return arrow_type(inner)[0], "null" in avro_type
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        if logical == "timestamp-micros":
            return pa.timestamp("us", tz="UTC"), False
        if logical == "timestamp-millis":
            return pa.timestamp("ms", tz="UTC"), False
        return arrow_type(avro_type["type"])
    simple = {
        "long": pa.int64(),
        "int": pa.int32(),
        "double": pa.float64(),
        "float": pa.float32(),
        "string": pa.string(),
        "boolean": pa.bool_(),
    }
    return simple[avro_type], False


def arrow_schema(avro_schema: dict[str, Any]) -> pa.Schema:
    fields = []
    for f in avro_schema["fields"]:
        dtype, nullable = arrow_type(f["type"])
        fields.append(pa.field(f["name"], dtype, nullable=nullable))
    return pa.schema(fields)


def _binary(lengths: np.ndarray, data: np.ndarray) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.binary(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def varints(values: np.ndarray) -> pa.Array:
    """Zigzag varint encodings of int64 values, one binary value per row."""
    zigzag = (values.astype(np.int64) << 1) ^ (values.astype(np.int64) >> 63)
    rest = zigzag.view(np.uint64).copy()
    out = np.zeros((len(values), _MAX_VARINT), dtype=np.uint8)
    lengths = np.ones(len(values), dtype=np.int32)
    for i in range(_MAX_VARINT):
        low = (rest & np.uint64(0x7F)).astype(np.uint8)
        rest >>= np.uint64(7)
        more = rest != 0
        out[:, i] = low | (more.astype(np.uint8) << 7)
        if not more.any():
            break
        lengths += more
    keep = np.arange(_MAX_VARINT) < lengths[:, None]
    return _binary(lengths, out[keep])


def _fixed(values: np.ndarray, width: int) -> pa.Array:
    data = np.ascontiguousarray(values).view(np.uint8)
    return _binary(np.full(len(values), width, dtype=np.int32), data)


def _encode_column(column: pa.Array, dtype: pa.DataType) -> pa.Array:
    """Per-row encodings of a column without nulls."""
    if pa.types.is_timestamp(dtype) or pa.types.is_integer(dtype):
        return varints(column.cast(pa.int64()).to_numpy(zero_copy_only=False))
    if pa.types.is_float64(dtype):
        return _fixed(column.to_numpy(zero_copy_only=False).astype("<f8"), 8)
    if pa.types.is_float32(dtype):
        return _fixed(column.to_numpy(zero_copy_only=False).astype("<f4"), 4)
    if pa.types.is_boolean(dtype):
        return _fixed(column.to_numpy(zero_copy_only=False).astype(np.uint8), 1)
    if pa.types.is_string(dtype):
        lengths = pc.binary_length(column).to_numpy(zero_copy_only=False)
        return pc.binary_join_element_wise(varints(lengths), column.cast(pa.binary()), b"")
    raise TypeError(f"no column encoder for {dtype}")


def _union_branch(avro_type: Any) -> tuple[bytes, bytes]:
    """The encoded branch indexes of (null, value) in a ["null", X] or [X, "null"] union."""
    null_first = avro_type.index("null") == 0
    return (b"\x00", b"\x02") if null_first else (b"\x02", b"\x00")


def encode(table: pa.Table, avro_schema: dict[str, Any]) -> pa.Array:
    """Avro binary bodies of every row of `table` (columns named like the schema's fields)."""
    parts = []
    for f in avro_schema["fields"]:
        dtype, nullable = arrow_type(f["type"])
        column = table.column(f["name"]).combine_chunks().cast(dtype)
        if not nullable:
            if column.null_count:
                raise ValueError(f"{f['name']} has nulls but the schema does not allow them")
            parts.append(_encode_column(column, dtype))
            continue
        null_branch, value_branch = _union_branch(f["type"])
        is_null = pc.is_null(column)
        filler = pa.scalar("" if pa.types.is_string(dtype) else 0).cast(dtype)
        encoded = _encode_column(pc.fill_null(column, filler), dtype)
        with_branch = pc.binary_join_element_wise(pa.scalar(value_branch), encoded, b"")
        parts.append(pc.if_else(is_null, pa.scalar(null_branch), with_branch))
    return pc.binary_join_element_wise(*parts, b"")


def frames(table: pa.Table, avro_schema: dict[str, Any], schema_id: int) -> list[bytes]:
    """Confluent wire-format frames (magic 0, 4-byte id, body) of every row."""
    header = pa.scalar(b"\x00" + schema_id.to_bytes(4, "big"))
    framed = pc.binary_join_element_wise(header, encode(table, avro_schema), b"")
    values: list[bytes] = framed.to_pylist()  # pyarrow is untyped: a binary array gives bytes
    return values


class _Reader:
    """Reads one field of every record at once: `pos[i]` is where record i's next field starts.

    All records advance field by field in lockstep, so a batch is decoded in a few numpy passes
    per field whatever its size. The buffer is padded, so a read past a record's end (a corrupt
    frame) lands in zeros and is caught by the end check instead of reading out of bounds.
    """

    def __init__(self, buf: np.ndarray, pos: np.ndarray) -> None:
        self.buf, self.pos = buf, pos

    def varint(self, active: np.ndarray | None = None) -> np.ndarray:
        n = len(self.pos)
        raw = np.zeros(n, dtype=np.uint64)
        length = np.zeros(n, dtype=np.int64)
        going = np.ones(n, dtype=bool) if active is None else active.copy()
        for i in range(_MAX_VARINT):
            byte = self.buf[self.pos + i].astype(np.uint64)
            raw |= np.where(going, (byte & np.uint64(0x7F)) << np.uint64(7 * i), np.uint64(0))
            length += going
            going &= (byte & np.uint64(0x80)) != 0
            if not going.any():
                break
        self.pos = self.pos + length
        return (raw >> np.uint64(1)).view(np.int64) ^ -(raw & np.uint64(1)).view(np.int64)

    def fixed(self, width: int, dtype: str, active: np.ndarray) -> np.ndarray:
        gathered = self.buf[self.pos[:, None] + np.arange(width)]
        self.pos = self.pos + np.where(active, width, 0)
        return np.ascontiguousarray(gathered).view(dtype).ravel()

    def binary(self, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.where(active, self.varint(active), 0)
        if (lengths < 0).any():
            raise ValueError("negative string length")
        starts = self.pos
        self.pos = self.pos + lengths
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # Byte j of the output comes from starts[row] + (j - offsets[row]).
        index = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
        return offsets, self.buf[index]


def _read_column(reader: _Reader, avro_type: Any, dtype: pa.DataType, n: int) -> pa.Array:
    nullable = isinstance(avro_type, list)
    present = np.ones(n, dtype=bool)
    if nullable:
        null_index = avro_type.index("null")
        branch = reader.varint()
        if ((branch != 0) & (branch != 1)).any():
            raise ValueError("union branch out of range")
        present = branch != null_index
    mask = None if not nullable else ~present
    if pa.types.is_timestamp(dtype) or pa.types.is_integer(dtype):
        values = np.where(present, reader.varint(present), 0)
        return pa.array(values, type=pa.int64(), mask=mask).cast(dtype)
    if pa.types.is_float64(dtype) or pa.types.is_float32(dtype):
        width, code = (8, "<f8") if pa.types.is_float64(dtype) else (4, "<f4")
        return pa.array(reader.fixed(width, code, present), type=dtype, mask=mask)
    if pa.types.is_boolean(dtype):
        return pa.array(reader.fixed(1, "u1", present) != 0, mask=mask)
    if pa.types.is_string(dtype):
        offsets, data = reader.binary(present)
        validity = None if not nullable else pa.array(present).buffers()[1]
        array = pa.Array.from_buffers(
            pa.string(),
            n,
            [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)],
        )
        array.validate(full=True)  # checks the UTF-8 of corrupt input too
        return array
    raise TypeError(f"no column decoder for {dtype}")


def decode(
    frames: list[bytes], schemas: Callable[[int], dict[str, Any]], target: pa.Schema
) -> pa.Table:
    """Confluent wire-format frames -> a table of `target` columns, in the frames' order.

    `schemas` gives the writer schema of an id; frames of several ids (v1 and v2 during a
    rollout) are decoded per id, and a field a writer lacked reads as null.
    """
    n = len(frames)
    lengths = np.fromiter(map(len, frames), dtype=np.int64, count=n)
    if (lengths < _FRAME_HEADER).any():
        raise wire_format.WireFormatError("a frame is shorter than its header")
    ends = np.cumsum(lengths)
    starts = ends - lengths
    buf = np.frombuffer(b"".join(frames) + bytes(_MAX_VARINT + 8), dtype=np.uint8)
    if (buf[starts] != wire_format.MAGIC).any():
        raise wire_format.WireFormatError("a frame has a bad magic byte")
    ids = buf[starts[:, None] + np.arange(1, _FRAME_HEADER)].astype(np.int64) @ _ID_WEIGHTS
    parts, order = [], []
    for schema_id in np.unique(ids):
        rows = np.flatnonzero(ids == schema_id)
        schema = schemas(int(schema_id))
        reader = _Reader(buf, starts[rows] + _FRAME_HEADER)
        columns = {}
        for f in schema["fields"]:
            dtype, _ = arrow_type(f["type"])
            columns[f["name"]] = _read_column(reader, f["type"], dtype, len(rows))
        if (reader.pos != ends[rows]).any():
            raise wire_format.WireFormatError(f"a frame does not match schema {schema_id}")
        parts.append(_conform(columns, len(rows), target))
        order.append(rows)
    if not parts:
        return target.empty_table()
    if len(parts) == 1:
        return parts[0]
    table = pa.concat_tables(parts)
    return table.take(np.argsort(np.concatenate(order), kind="stable"))


def _conform(columns: dict[str, pa.Array], n: int, target: pa.Schema) -> pa.Table:
    arrays = [
        columns[f.name].cast(f.type) if f.name in columns else pa.nulls(n, f.type) for f in target
    ]
    return pa.Table.from_arrays(arrays, schema=target)
