"""Column-wise Avro encoding is byte-identical to fastavro's record-at-a-time encoding."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta

import fastavro
import numpy as np
import pyarrow as pa
import pytest
from fastavro.types import Schema

from headrace.codec import avro_columns
from headrace.runtime.paths import SCHEMAS_DIR


def fastavro_body(schema: Schema, record: object) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


@pytest.mark.parametrize("version", [1, 2])
def test_transaction_records_match_fastavro(version: int) -> None:
    avro = json.loads((SCHEMAS_DIR / f"transaction.v{version}.avsc").read_text())
    rng = random.Random(version)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    records = []
    for i in range(2_000):
        r = {
            "transaction_id": rng.choice([1, 63, 64, 8191, 8192, 2**40, 2**63 - 1, -(2**63), i]),
            "amount": rng.choice([0.0, -1.5, 1e300, rng.uniform(-1e6, 1e6)]),
            "processing_duration": None if i % 3 == 0 else rng.random(),
            "status": rng.choice(["", "COMPLETED", "é" * rng.randrange(0, 200)]),
            "source_system": "x" * rng.randrange(0, 300),
            "account_number": f"{rng.randrange(10**12):012d}",
            "account_type": "SAVINGS",
            "customer_region": "日本",
            "event_time": epoch + timedelta(microseconds=rng.randrange(-(2**50), 2**55)),
        }
        if version == 2:
            r["channel"] = None if i % 2 else rng.choice(["ATM", ""])
        records.append(r)
    table = pa.Table.from_pylist(records, schema=avro_columns.arrow_schema(avro))
    parsed = fastavro.parse_schema(avro)
    assert avro_columns.encode(table, avro).to_pylist() == [
        fastavro_body(parsed, r) for r in records
    ]
    framed = avro_columns.frames(table, avro, 4)
    assert framed[0] == b"\x00\x00\x00\x00\x04" + fastavro_body(parsed, records[0])


def test_varints_of_extremes() -> None:
    values = np.array([0, -1, 1, -64, 64, 2**63 - 1, -(2**63)], dtype=np.int64)
    expected = [fastavro_body({"type": "long"}, int(v)) for v in values]
    assert avro_columns.varints(values).to_pylist() == expected


def test_decode_reads_mixed_versions_back_in_order() -> None:
    v1 = json.loads((SCHEMAS_DIR / "transaction.v1.avsc").read_text())
    v2 = json.loads((SCHEMAS_DIR / "transaction.v2.avsc").read_text())
    target = avro_columns.arrow_schema(v2)
    rng = random.Random(5)
    records = [
        {
            "transaction_id": rng.choice([1, 2**62, -5, i]),
            "amount": rng.uniform(-1e9, 1e9),
            "processing_duration": None if i % 4 == 0 else rng.random(),
            "status": "COMPLETED",
            "source_system": "ü" * rng.randrange(0, 70),
            "account_number": f"{i:012d}",
            "account_type": "",
            "customer_region": "EU",
            "event_time": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=i * 977),
            "channel": None if i % 2 else rng.choice(["ATM", "POS"]),
        }
        for i in range(3_000)
    ]
    table = pa.Table.from_pylist(records, schema=target)
    as_v2 = avro_columns.frames(table, v2, 4)
    as_v1 = avro_columns.frames(table.drop_columns(["channel"]), v1, 1)
    mixed = [a if i % 3 else b for i, (a, b) in enumerate(zip(as_v2, as_v1, strict=True))]
    schemas = {1: v1, 4: v2}
    decoded = avro_columns.decode(mixed, schemas.__getitem__, target)
    expected = [r if i % 3 else {**r, "channel": None} for i, r in enumerate(records)]
    assert decoded.to_pylist() == expected


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00\x00\x00",  # shorter than the header
        b"\x01\x00\x00\x00\x04\x02",  # bad magic byte
        b"\x00\x00\x00\x00\x04\x02",  # body cut short
    ],
)
def test_decode_refuses_corrupt_frames(frame: bytes) -> None:
    v2 = json.loads((SCHEMAS_DIR / "transaction.v2.avsc").read_text())
    with pytest.raises(ValueError):
        avro_columns.decode([frame], lambda _: v2, avro_columns.arrow_schema(v2))
