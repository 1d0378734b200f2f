"""One case per reason code, end to end through the real broker and pipeline.

Each bad event must be rejected with its code, kept with its original bytes (error zone; for a
duplicate, the warehouse's transaction_duplicate plus the raw zone) and counted in the per-reason
metric of the service that rejected it.
"""

from __future__ import annotations

import base64
import urllib.request
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from confluent_kafka import KafkaError, Message
from prometheus_client.parser import text_string_to_metric_families

from headrace.codec import wire_format
from headrace.dev.local_pipeline import LocalPipeline
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics
from headrace.lake import error_zone, raw_zone, warehouse
from headrace.lake.bucket import Bucket
from headrace.runtime.settings import CommonSettings
from tests.conftest import wait_settled

pytestmark = pytest.mark.integration
Start = Callable[[CommonSettings], LocalPipeline]


def event(tid: int, **changes: Any) -> bytes:
    good = {
        "transaction_id": tid,
        "amount": 12.5,
        "processing_duration": 0.2,
        "status": "COMPLETED",
        "source_system": "pos",
        "account_number": "123456789012",
        "account_type": "CHECKING",
        "customer_region": "EU",
        "event_time": "2026-01-15T10:00:00Z",
    }
    return orjson.dumps({k: v for k, v in {**good, **changes}.items() if v is not ...})


# (reason, value): every code the validator gives, each on a value that is wrong in that way only.
VALIDATOR_CASES: list[tuple[str, bytes | None]] = [
    ("ENCODING", event(101).replace(b'"pos"', b'"p\xffs"')),
    ("PARSE", event(102)[:-9]),
    ("EMPTY", None),
    ("SIZE", event(104, source_system="x" * 70_000)),
    ("WIRE_FORMAT", b"\x00\x00\x01"),
    ("SCHEMA_ID", wire_format.frame(999, b"\x02\x04")),
    ("MISSING", event(107, amount=...)),
    ("TYPE", event(108, amount="12.5")),
    ("RANGE", event(109, amount=-3)),
    ("ENUM", event(110, status="DONE")),
    ("PATTERN", event(111, account_number="12345")),
    ("TIME", event(112, event_time=1_700_000_000_000)),
    ("UNKNOWN_FIELD", event(113, note="hello")),
]
DUPLICATE = event(200)


def produce_all(common: CommonSettings, values: list[bytes | None]) -> list[tuple[int, int]]:
    """Publish in order; return each value's (partition, offset) in raw."""
    positions: dict[int, tuple[int, int]] = {}

    def on_delivery(i: int) -> Callable[[KafkaError | None, Message], None]:
        def done(err: KafkaError | None, msg: Message) -> None:
            assert err is None, err
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None  # a delivered message has both
            positions[i] = (partition, offset)

        return done

    producer = kafka_clients.producer(common.bootstrap_servers)
    for i, value in enumerate(values):
        # Keyed like the producer service does, so both copies of a transaction meet in a loader.
        producer.produce(Topics(common.topic_prefix).raw, value, b"k", on_delivery=on_delivery(i))
        producer.flush(10)  # one at a time: the duplicate must come after its first copy
    return [positions[i] for i in range(len(values))]


def rejected_metric(pipeline: LocalPipeline, service: str) -> Counter[str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{pipeline.port(service)}/metrics") as r:
        text = r.read().decode()
    found: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        if family.name == "headrace_events_rejected":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    found[sample.labels["reason"]] += int(sample.value)
    return found


def original_of(record: dict[str, Any], name: str) -> bytes | None:
    if f"{name}_base64" in record:
        return base64.b64decode(record[f"{name}_base64"])
    text = record[name]
    return None if text is None else str(text).encode()


def test_every_reason_code_end_to_end(
    make_settings: Callable[..., CommonSettings], start_pipeline: Start
) -> None:
    common = make_settings()
    pipeline = start_pipeline(common)
    values = [v for _, v in VALIDATOR_CASES] + [DUPLICATE, DUPLICATE]
    positions = produce_all(common, values)
    wait_settled(common, len(values), pipeline)

    bucket = Bucket.open(common.bucket_url)
    records = {(r["source_partition"], r["source_offset"]): r for r in error_zone.records(bucket)}
    assert len(records) == len(VALIDATOR_CASES)
    for (reason, value), position in zip(VALIDATOR_CASES, positions, strict=False):
        record = records[position]
        assert record["reason"] == reason, (reason, record["problems"])
        assert original_of(record, "original") == value, reason
        assert record["source_topic"] == Topics(common.topic_prefix).raw
        assert record["stage"] == "validator" and record["problems"][0]["message"]

    con = warehouse.connect(common, read_only=True)
    assert con.execute(
        "SELECT count(*) FROM transaction_fact WHERE transaction_id = 200"
    ).fetchone() == (1,)
    assert con.execute(
        "SELECT count(*) FROM transaction_duplicate WHERE transaction_id = 200"
    ).fetchone() == (1,)
    # The duplicate's original bytes are in the raw zone, at the second copy's position.
    raw = {(r["partition"], r["offset"]): original_of(r, "value") for r in raw_zone.records(bucket)}
    assert raw[positions[-1]] == DUPLICATE

    assert rejected_metric(pipeline, "validator") == Counter(r for r, _ in VALIDATOR_CASES)
    assert rejected_metric(pipeline, "loader") == Counter({"DUPLICATE": 1})
