"""Reading upstream files: every format yields the same events, with keys and row numbers."""

from __future__ import annotations

from pathlib import Path

import fastavro
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from headrace.errors import OperatorError
from services.producer.core import read_batches

ROWS = [
    {
        "transaction_id": 1,
        "amount": 1.5,
        "status": "PENDING",
        "account_number": "000000000001",
        "event_time": "2026-11-20T10:00:00Z",
    },
    {
        "transaction_id": 2,
        "amount": 2.0,
        "status": "FAILED",
        "account_number": "000000000002",
        "event_time": "2026-11-21T10:00:00Z",
    },
]


def events(path: Path) -> list[tuple[dict[str, object], bytes | None, int]]:
    return [(orjson.loads(e.value), e.key, e.row) for b in read_batches(path) for e in b]


def test_jsonl_lines_are_sent_as_received(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_bytes(orjson.dumps(ROWS[0]) + b"\n\n{broken\n" + orjson.dumps(ROWS[1]) + b"\n")
    got = [e for b in read_batches(f) for e in b]
    assert [e.row for e in got] == [1, 3, 4]
    assert got[1].value == b"{broken" and got[1].key is None
    assert got[0].key == b"1" and orjson.loads(got[2].value) == ROWS[1]


def test_csv_parquet_avro_give_the_same_events(tmp_path: Path) -> None:
    table = pa.Table.from_pylist(ROWS)
    pacsv.write_csv(table, tmp_path / "a.csv")
    pq.write_table(table, tmp_path / "a.parquet")
    schema = {
        "type": "record",
        "name": "T",
        "fields": [
            {"name": "transaction_id", "type": "long"},
            {"name": "amount", "type": "double"},
            {"name": "status", "type": "string"},
            {"name": "account_number", "type": "string"},
            {"name": "event_time", "type": "string"},
        ],
    }
    with (tmp_path / "a.avro").open("wb") as out:
        fastavro.writer(out, schema, ROWS)
    expected = [(r, str(r["transaction_id"]).encode()) for r in ROWS]
    for name, first_row in (("a.csv", 2), ("a.parquet", 1), ("a.avro", 1)):
        got = events(tmp_path / name)
        assert [(v, k) for v, k, _ in got] == expected, name
        assert [row for *_, row in got] == [first_row, first_row + 1], name


def test_operator_mistakes_get_one_line_messages(tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match="no such file"):
        list(read_batches(tmp_path / "missing.jsonl"))
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(OperatorError, match="unknown file type"):
        list(read_batches(tmp_path / "a.txt"))
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(OperatorError, match="not a readable Parquet"):
        list(read_batches(tmp_path / "bad.parquet"))
