"""The validator's pure core: each kind of bad event gets its reason code and field."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import orjson
import pytest

from headrace.contract import load_contract
from headrace.sample_events import BAD_KINDS, good_event
from services.validator.core import Validator

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
GOOD = {
    "transaction_id": 42,
    "amount": 10.5,
    "processing_duration": None,
    "status": "COMPLETED",
    "source_system": "pos",
    "account_number": "123456789012",
    "account_type": "CHECKING",
    "customer_region": "EU",
    "event_time": "2026-11-20T10:00:00Z",
}


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(load_contract())


def spoil(**changes: object) -> bytes:
    event = {**GOOD, **changes}
    return orjson.dumps({k: v for k, v in event.items() if v is not ...})


@pytest.mark.parametrize(
    ("value", "reason", "field"),
    [
        (b"", "EMPTY", None),
        (None, "EMPTY", None),
        (b"   ", "EMPTY", None),
        (b"{", "PARSE", None),
        (b"[1, 2]", "PARSE", None),
        (b'{"x": "\xff"}', "ENCODING", None),
        (b"\xff\xfe{}", "ENCODING", None),
        (b" " * 70_000, "EMPTY", None),
        (b"{" + b" " * 70_000 + b"}", "SIZE", None),
        (spoil(amount=...), "MISSING", "amount"),
        (spoil(transaction_id=None), "MISSING", "transaction_id"),
        (spoil(amount="10.5"), "TYPE", "amount"),
        (spoil(transaction_id=1.5), "TYPE", "transaction_id"),
        (spoil(amount=-1), "RANGE", "amount"),
        (spoil(source_system=""), "RANGE", "source_system"),
        (spoil(status="DONE"), "ENUM", "status"),
        (spoil(account_number="12345"), "PATTERN", "account_number"),
        (spoil(account_number="12345678901a"), "PATTERN", "account_number"),
        (spoil(event_time="2999-01-01T00:00:00Z"), "TIME", "event_time"),
        (spoil(event_time="1970-01-01T00:00:00Z"), "TIME", "event_time"),
        (spoil(event_time="2026-11-20T10:00:00"), "TIME", "event_time"),
        (spoil(event_time=1700000000), "TIME", "event_time"),
    ],
)
def test_rejection_reason(
    validator: Validator, value: bytes | None, reason: str, field: str | None
) -> None:
    outcome = validator.validate([value], NOW)
    assert outcome.valid == []
    [(index, problems)] = outcome.rejected
    assert index == 0
    assert (problems[0].reason, problems[0].field) == (reason, field)
    assert problems[0].message


def test_valid_event_decodes_to_avro_ready_record(validator: Validator) -> None:
    outcome = validator.validate([spoil(), spoil(processing_duration=...)], NOW)
    assert outcome.rejected == []
    assert [i for i, _ in outcome.valid] == [0, 1]
    record = outcome.valid[0][1]
    assert record["event_time"] == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert record["processing_duration"] is None and record["amount"] == 10.5


def test_unknown_fields_are_ignored(validator: Validator) -> None:
    assert validator.validate([spoil(note="hello")], NOW).rejected == []


@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
def test_sample_generator_bad_kinds_get_the_promised_reason(
    validator: Validator, kind: str
) -> None:
    reason, make_bad = BAD_KINDS[kind]
    event = good_event(random.Random(1), 7, NOW, [123456789012])
    [(_, problems)] = validator.validate([make_bad(event)], NOW).rejected
    assert problems[0].reason == reason
