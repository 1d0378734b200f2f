"""The validator's pure core: each kind of bad event gets its reason code and field."""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import orjson
import pyarrow as pa
import pytest

from headrace.codec import wire_format
from headrace.codec.registry import default_registry
from headrace.contract.rules import ContractWatcher, load_contract
from headrace.contract.validator import Validator
from headrace.dev.sample_events import BAD_KINDS, good_event
from headrace.runtime.paths import SCHEMAS_DIR

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
    return Validator(load_contract(), default_registry())


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
        (spoil(event_time=1700000000000), "TIME", "event_time"),
        (spoil(event_time=0), "TIME", "event_time"),
        (spoil(event_time=-5), "TIME", "event_time"),
        (b"null", "EMPTY", None),
        (spoil().replace(b"10.5", b"1e999"), "TYPE", "amount"),
        (spoil().replace(b"10.5", b"NaN"), "TYPE", "amount"),
        (
            spoil(processing_duration=1.0).replace(b"1.0", b"-Infinity"),
            "TYPE",
            "processing_duration",
        ),
        (spoil(transaction_id="42"), "TYPE", "transaction_id"),
        (spoil(transaction_id=True), "TYPE", "transaction_id"),
        (spoil(channel="CARRIER_PIGEON"), "ENUM", "channel"),
        (spoil(note="hello"), "UNKNOWN_FIELD", "note"),
        (b"\x00\x00\x00", "WIRE_FORMAT", None),
        (b"\x01\x00\x00\x00\x01abc", "WIRE_FORMAT", None),
        (wire_format.frame(999, b"\x02"), "SCHEMA_ID", None),
        (wire_format.frame(2, b"\x02"), "SCHEMA_ID", None),  # an error envelope, not a transaction
        (wire_format.frame(1, b"\x02"), "WIRE_FORMAT", None),  # truncated body
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


def test_one_rejection_lists_every_problem(validator: Validator) -> None:
    value = spoil(amount=-1, status="DONE", account_number="12", note=1, event_time=1.7e9)
    [(_, problems)] = validator.validate([value], NOW).rejected
    assert {(p.reason, p.field) for p in problems} == {
        ("RANGE", "amount"),
        ("ENUM", "status"),
        ("PATTERN", "account_number"),
        ("TIME", "event_time"),
        ("UNKNOWN_FIELD", "note"),
    }
    assert "epoch seconds" in next(p.message for p in problems if p.reason == "TIME")


def test_v1_and_v2_json_events_both_pass(validator: Validator) -> None:
    outcome = validator.validate([spoil(), spoil(channel="MOBILE")], NOW)
    assert outcome.rejected == []
    assert [r["channel"] for _, r in outcome.valid] == [None, "MOBILE"]


def test_avro_framed_events_of_either_version_pass(validator: Validator) -> None:
    registry = default_registry()
    record = {**GOOD, "event_time": datetime(2026, 11, 20, 10, tzinfo=UTC)}
    v1 = registry.encode("transaction.v1.avsc", record)
    v2 = registry.encode("transaction.v2.avsc", {**record, "channel": "ATM"})
    bad = registry.encode("transaction.v1.avsc", {**record, "amount": -3.0})
    outcome = validator.validate([v1, v2, bad], NOW)
    assert [(i, r["channel"]) for i, r in outcome.valid] == [(0, None), (1, "ATM")]
    [(index, problems)] = outcome.rejected
    assert index == 2
    assert (problems[0].reason, problems[0].field) == ("RANGE", "amount")


def contract_dir(tmp_path: Path, **changes: object) -> Path:
    """A copy of schemas/ whose contract has `changes` applied (top level or per field)."""
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, target, dirs_exist_ok=True)
    path = target / "transaction.contract.json"
    spec = json.loads(path.read_text())
    for key, value in changes.items():
        if key in spec["fields"]:
            spec["fields"][key] = value
        else:
            spec[key] = value
    path.write_text(json.dumps(spec))
    return target


def test_unknown_field_policy_ignore(tmp_path: Path) -> None:
    directory = contract_dir(tmp_path, unknown_fields="ignore")
    lenient = Validator(load_contract(directory=directory), default_registry())
    assert lenient.validate([spoil(note="hello")], NOW).rejected == []


def test_watcher_reloads_a_changed_contract_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    directory = contract_dir(tmp_path)
    watcher = ContractWatcher(directory, every=0)
    first = watcher.current()
    assert watcher.current() is first  # unchanged files: the same contract
    relaxed = contract_dir(tmp_path, amount={"ge": 0, "le": 10**12})
    assert relaxed == directory
    second = watcher.current()
    assert second is not first
    assert Validator(second, default_registry()).validate([spoil(amount=5e9)], NOW).rejected == []
    (directory / "transaction.contract.json").write_text("{ not json")
    assert watcher.current() is second


@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
def test_sample_generator_bad_kinds_get_the_promised_reason(
    validator: Validator, kind: str
) -> None:
    reason, make_bad = BAD_KINDS[kind]
    event = good_event(random.Random(1), 7, NOW, [123456789012])
    [(_, problems)] = validator.validate([make_bad(event)], NOW).rejected
    assert problems[0].reason == reason


def spoil_text(**changes: object) -> bytes:
    """`spoil` through the standard library's JSON, which writes integers of any size."""
    return json.dumps({**GOOD, **changes}).encode()


DEEP = b"[" * 20_000 + b"]" * 20_000


@pytest.mark.parametrize(
    ("value", "reason", "field"),
    [
        (spoil_text(transaction_id=2**63 + 5), "RANGE", "transaction_id"),
        (spoil_text(transaction_id=10**30), "RANGE", "transaction_id"),
        (spoil_text(amount=1e39), "RANGE", "amount"),
        (spoil_text()[:-1] + b', "deep": ' + DEEP + b"}", "SIZE", None),
        (DEEP, "SIZE", None),
    ],
    ids=["int64+5", "1e30", "float32-max", "deep-unknown-field", "deep-document"],
)
def test_values_no_later_step_could_take_are_rejected(
    validator: Validator, value: bytes, reason: str, field: str | None
) -> None:
    outcome = validator.validate([orjson.dumps(GOOD), value, orjson.dumps(GOOD)], NOW)
    assert outcome.rows == [0, 2]
    ((index, problems),) = outcome.rejected
    assert index == 1 and problems[0].reason == reason
    if field:
        assert problems[0].field == field


def test_a_record_the_columnar_step_fails_on_is_isolated(
    validator: Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    import headrace.contract.validator as core

    real = core.Validator._table

    def table(self: Validator, events: list[msgspec.Struct]) -> pa.Table:
        if any(getattr(e, "source_system", None) == "poison" for e in events):
            raise OverflowError("int too big to convert")
        return real(self, events)

    monkeypatch.setattr(core.Validator, "_table", table)
    values: list[bytes | None] = [spoil(transaction_id=i + 1) for i in range(50)]
    values[17] = spoil(transaction_id=18, source_system="poison")
    outcome = validator.validate(values, NOW)
    assert outcome.rows == [i for i in range(50) if i != 17]
    ((index, problems),) = outcome.rejected
    assert index == 17 and problems[0].reason == "UNPROCESSABLE"
    assert "OverflowError" in problems[0].message
    encoded = validator.encode(outcome, 1)
    assert encoded.rows == outcome.rows and len(encoded.frames) == 49
