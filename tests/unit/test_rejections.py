"""Rejected events from a real warehouse and bucket (no broker): filters, the summary, duplicates'
bytes found in the raw zone, the reprocess ledger's effect, bytes shown safely, a dry run."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pytest

from headrace.codec import original_bytes
from headrace.contract import envelope
from headrace.lake import warehouse
from headrace.lake.bucket import Bucket
from headrace.rejections import ledger as reprocess_ledger
from headrace.rejections import reprocess
from headrace.rejections import select as rejections
from headrace.rejections.select import Selection
from headrace.runtime.paths import SCHEMAS_DIR
from headrace.runtime.settings import CommonSettings
from services.stager.core import Record, raw_line, stage, text_or_base64

RAW = "t.raw"
DAY1 = datetime(2026, 10, 1, 10, tzinfo=UTC)
DAY2 = datetime(2026, 10, 2, 10, tzinfo=UTC)


def event(tid: int, amount: float = 12.5, source: str = "pos") -> bytes:
    return orjson.dumps(
        {
            "transaction_id": tid,
            "amount": amount,
            "processing_duration": 0.2,
            "status": "COMPLETED",
            "source_system": source,
            "account_number": "000000000042",
            "account_type": "CHECKING",
            "customer_region": "EU",
            "event_time": "2026-09-30T12:00:00Z",
        }
    )


def ms(at: datetime, plus: int = 0) -> int:
    return int(at.timestamp() * 1000) + plus


# (partition, offset, timestamp ms, key, value, headers)
RAW_MESSAGES: list[tuple[int, int, int, bytes | None, bytes, dict[str, str]]] = [
    (0, 0, ms(DAY1), b"1", event(1), {"headrace.source_file": "a.jsonl"}),
    (0, 1, ms(DAY1, 1), b"2", event(2, amount=5e9), {"headrace.source_file": "a.jsonl"}),
    (0, 2, ms(DAY1, 2), None, b"\x01\xff\x1b[31mbin", {"headrace.source": "http"}),
    (0, 3, ms(DAY1, 3), b"1", event(1, source="web"), {"headrace.source_file": "b.jsonl"}),
    (1, 0, ms(DAY2), None, b'{"transaction_id": 3,', {"headrace.source_file": "b.jsonl"}),
]
# position -> (reason, field)
REJECTED = {(0, 1): ("RANGE", "amount"), (0, 2): ("WIRE_FORMAT", None), (1, 0): ("PARSE", None)}


@pytest.fixture
def lake(tmp_path: Path) -> Iterator[tuple[CommonSettings, Bucket, duckdb.DuckDBPyConnection]]:
    common = CommonSettings(
        bucket_url=str(tmp_path / "bucket"),
        catalog_url=str(tmp_path / "catalog.sqlite"),
        schemas_dir=SCHEMAS_DIR,
    )
    con = warehouse.connect(common)
    warehouse.migrate(con)
    bucket = Bucket.open(common.bucket_url)
    records = [
        Record(RAW, p, o, t, k, v, [(h, x.encode()) for h, x in hs.items()])
        for p, o, t, k, v, hs in RAW_MESSAGES
    ]
    for f in stage("raw", records, raw_line, "w"):
        bucket.write_atomic(f.path, f.data)
    errors = [
        Record("t.error", r.partition, 100 + r.offset, r.timestamp_ms, r.key, r.value, [])
        for r in records
        if (r.partition, r.offset) in REJECTED
    ]
    for f in stage("error", errors, error_line, "w"):
        bucket.write_atomic(f.path, f.data)
    # tx 1 loaded from raw 0/0 (validated offset 0); its second copy (raw 0/3) a duplicate.
    _insert_fact(con, 1, validated_offset=0, ingested_ms=ms(DAY1))
    con.execute(
        "INSERT INTO transaction_duplicate BY NAME SELECT 1 AS transaction_id, 'b1' AS batch_id,"
        " 't.validated' AS source_topic, 0 AS source_partition, 2 AS source_offset,"
        " make_timestamptz(? * 1000) AS ingested_at",
        [ms(DAY1, 3)],
    )
    yield common, bucket, con
    con.close()


def error_line(r: Record) -> dict[str, Any]:
    """As the stager writes an error record (services/stager/runner.py: error_line)."""
    reason, field = REJECTED[(r.partition, r.offset - 100)]
    problem = envelope.Problem(reason, field, f"{reason} here")
    env = envelope.build([problem], "validator", (RAW, r.partition, r.offset - 100), r.value)
    env["source_timestamp_ms"] = r.timestamp_ms
    original = env.pop("original")
    env["rejected_at"] = env["rejected_at"].isoformat()
    return {**env, **text_or_base64(original, "original"), "error_offset": r.offset}


def _insert_fact(
    con: duckdb.DuckDBPyConnection, tid: int, validated_offset: int, ingested_ms: int
) -> None:
    con.execute(
        """INSERT INTO transaction_fact BY NAME SELECT
           ? AS transaction_id, 1.0 AS amount, 'COMPLETED' AS status, 'pos' AS source_system,
           now() AS load_timestamp, 20260930 AS time_id, 7 AS account_id,
           now() AS event_time, 'b0' AS batch_id, 't.validated' AS source_topic,
           0 AS source_partition, ? AS source_offset, make_timestamptz(? * 1000) AS ingested_at""",
        [tid, validated_offset, ingested_ms],
    )


def reasons(
    lake: tuple[CommonSettings, Bucket, duckdb.DuckDBPyConnection], selection: Selection
) -> dict[str, int]:
    _, bucket, con = lake
    rejections.load(con, bucket, selection)
    return {r["reason"]: r["events"] for r in rejections.by_reason(con)}


def test_every_rejection_once_with_its_source(lake: Any) -> None:
    assert reasons(lake, Selection()) == {"RANGE": 1, "WIRE_FORMAT": 1, "PARSE": 1, "DUPLICATE": 1}
    _, _, con = lake
    groups = {g["reason"]: g for g in rejections.groups(con)}
    assert groups["RANGE"] == {
        "day": date(2026, 10, 1),
        "reason": "RANGE",
        "field": "amount",
        "source_system": "pos",
        "source_file": "a.jsonl",
        "source_partition": "t.raw/0",
        "events": 1,
        "reprocessed": 0,
        "resolved": 0,
        "still_failing": 0,
    }
    assert groups["WIRE_FORMAT"]["source_file"] == "http"
    assert groups["PARSE"]["day"] == date(2026, 10, 2)


def test_a_duplicate_shows_the_bytes_of_its_own_raw_message(lake: Any) -> None:
    _, bucket, con = lake
    rejections.load(con, bucket, Selection(reasons=("DUPLICATE",)))
    [sample] = rejections.samples(con, 5)
    assert sample["original"] == event(1, source="web").decode()
    assert (sample["source_topic"], sample["source_partition"], sample["source_offset"]) == (
        RAW,
        0,
        3,
    )
    assert sample["source_file"] == "b.jsonl" and sample["transaction_id"] == 1


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (Selection.of(day=date(2026, 10, 2)), {"PARSE"}),
        (Selection.of(since=date(2026, 10, 2)), {"PARSE"}),
        (Selection.of(until=date(2026, 10, 1)), {"RANGE", "WIRE_FORMAT", "DUPLICATE"}),
        (Selection.of(reasons=["range", "parse"]), {"RANGE", "PARSE"}),
        (Selection.of(sources=["http"]), {"WIRE_FORMAT"}),
        (Selection.of(sources=["b.jsonl"]), {"PARSE", "DUPLICATE"}),
        (Selection.of(sources=["pos"]), {"RANGE"}),
        (Selection.of(sources=["t.raw/1"]), {"PARSE"}),
        (Selection.of(sources=["t.raw"], reasons=["WIRE_FORMAT"]), {"WIRE_FORMAT"}),
        (Selection.of(day=date(2026, 9, 1)), set()),
    ],
)
def test_filters(lake: Any, selection: Selection, expected: set[str]) -> None:
    assert set(reasons(lake, selection)) == expected


def test_date_and_range_together_are_refused() -> None:
    with pytest.raises(Exception, match="not both"):
        Selection.of(day=date(2026, 10, 1), since=date(2026, 10, 1))


def test_ledger_counts_reprocessed_and_resolved_and_a_copy_rejected_again(lake: Any) -> None:
    _, bucket, con = lake
    base = {"run_id": "r1", "attempted_at": DAY2.isoformat(), "contract": "c", "problems": []}
    reprocess_ledger.write(
        bucket,
        "r1",
        0,
        [
            {**base, "source_topic": RAW, "source_partition": 0, "source_offset": 1,
             "reason": "RANGE", "outcome": "republished", "transaction_id": 2,
             "republished_topic": RAW, "republished_partition": 0, "republished_offset": 9},
            {**base, "source_topic": RAW, "source_partition": 1, "source_offset": 0,
             "reason": "PARSE", "outcome": "republished", "transaction_id": 3,
             "republished_topic": RAW, "republished_partition": 1, "republished_offset": 5},
            {**base, "source_topic": RAW, "source_partition": 0, "source_offset": 2,
             "reason": "WIRE_FORMAT", "outcome": "still_failing", "problems": ["WIRE_FORMAT"]},
        ],
    )  # fmt: skip
    _insert_fact(con, 2, validated_offset=7, ingested_ms=ms(DAY2, 50))
    # The PARSE copy was rejected again: it has its own error record, which must not count.
    copy = {**error_line(Record("t.error", 1, 100, ms(DAY2, 60), None, b"{", [])),
            "source_offset": 5, "reason": "PARSE"}  # fmt: skip
    bucket.write_atomic("error/date=2026-10-02/copy.jsonl", orjson.dumps(copy) + b"\n")

    rejections.load(con, bucket, Selection())
    by_reason = {r["reason"]: r for r in rejections.by_reason(con)}
    assert by_reason["RANGE"]["events"] == 1
    assert (by_reason["RANGE"]["reprocessed"], by_reason["RANGE"]["resolved"]) == (1, 1)
    assert by_reason["PARSE"]["events"] == 1 and by_reason["PARSE"]["rejected_again"] == 1
    assert by_reason["PARSE"]["resolved"] == 0
    assert by_reason["WIRE_FORMAT"]["still_failing"] == 1
    # RANGE has a live copy: not a candidate; the PARSE copy failed: a candidate again.
    candidates = con.execute(reprocess.CANDIDATES).fetchall()
    assert sorted(c[3] for c in candidates) == ["PARSE", "WIRE_FORMAT"]


def test_dry_run_under_a_relaxed_contract(lake: Any, tmp_path: Path) -> None:
    common, _, _ = lake
    relaxed = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, relaxed)
    contract = json.loads((relaxed / "transaction.contract.json").read_text())
    contract["fields"]["amount"]["le"] = 1e10
    (relaxed / "transaction.contract.json").write_text(json.dumps(contract))
    common = common.model_copy(update={"schemas_dir": relaxed})

    summary = reprocess.run(common, Selection(), dry_run=True)

    assert summary.republished == {"RANGE": 1}
    assert set(summary.still_failing) == {("PARSE", "PARSE"), ("WIRE_FORMAT", "WIRE_FORMAT")}
    assert summary.duplicates == 1
    assert not Bucket.open(common.bucket_url).glob(reprocess_ledger.PATTERN)


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        (b'{"a": 1}', '{"a": 1}'),
        (b"line\nfeed\x1b[2J", "line\\nfeed\\x1b[2J"),
        ("bidi \u202e".encode(), "bidi \\u202e"),
        (b"\x00\xff", "binary: \\x00\\xff"),
        (None, "(no value: a tombstone)"),
    ],
)
def test_bytes_are_shown_safely(data: bytes | None, shown: str) -> None:
    assert original_bytes.printable(data) == shown


def test_long_values_are_cut_and_json_keeps_exact_bytes() -> None:
    assert original_bytes.printable(b"x" * 50, limit=10) == "xxxxxxxxxx… (50 bytes)"
    assert original_bytes.as_json(b"\xff") == {"original_base64": "/w==", "original_text": None}
