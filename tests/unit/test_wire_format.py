"""Confluent wire format and the file-backed registry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from headrace.codec import wire_format
from headrace.codec.registry import FileSchemaRegistry, UnknownSchemaId

RECORD = {
    "transaction_id": 1,
    "amount": 2.5,
    "processing_duration": None,
    "status": "PENDING",
    "source_system": "pos",
    "account_number": "000000000001",
    "account_type": "SAVINGS",
    "customer_region": "NA",
    "event_time": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
}


def test_round_trip_with_confluent_header() -> None:
    registry = FileSchemaRegistry()
    data = registry.encode("transaction.v1.avsc", RECORD)
    assert data[0] == 0 and int.from_bytes(data[1:5], "big") == 1
    assert registry.decode(data) == RECORD


def test_bad_frames_are_refused() -> None:
    registry = FileSchemaRegistry()
    with pytest.raises(wire_format.WireFormatError):
        registry.decode(b"\x00\x00")
    with pytest.raises(wire_format.WireFormatError):
        registry.decode(b"\x01\x00\x00\x00\x01abc")
    with pytest.raises(UnknownSchemaId):
        registry.decode(wire_format.frame(999, b""))


def test_every_registered_schema_parses() -> None:
    registry = FileSchemaRegistry()
    for schema_id in (1, 2, 3):
        assert registry.schema(schema_id)
