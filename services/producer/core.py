"""Reading upstream files into raw messages. Pure: no Kafka imports.

Every reader yields batches of `RawEvent`s. JSONL lines are sent exactly as they are (bytes as
received, bad lines included: the validator, not the producer, decides what is wrong). Rows of CSV,
Parquet and Avro files are serialized to JSON objects. The message key is the transaction_id where
one can be read, so every copy of a transaction lands in the same partition (the loader's
first-wins duplicate rule relies on that).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from headrace.errors import OperatorError

BATCH_ROWS = 10_000
FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".avro": "avro",
}


@dataclass(frozen=True)
class RawEvent:
    value: bytes
    key: bytes | None
    row: int  # 1-based line or row number in the source file


def key_of(obj: Any) -> bytes | None:
    if isinstance(obj, dict):
        tid = obj.get("transaction_id")
        if isinstance(tid, int | str) and not isinstance(tid, bool):
            return str(tid).encode()
    return None


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OperatorError(
            f"{path}: unknown file type {path.suffix!r}; use .jsonl, .csv, .parquet or .avro"
        )
    return fmt


def count_rows(path: Path) -> int | None:
    """Rows in the file when that is cheap to know (for the progress bar), else None."""
    fmt = detect_format(path)
    if fmt == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    if fmt == "jsonl":
        with path.open("rb") as f:
            return sum(1 for line in f if line.strip())
    return None


def check_readable(path: Path) -> str:
    """The file's format, or an operator error when it is missing or of an unknown type."""
    if not path.is_file():
        raise OperatorError(f"{path}: no such file; give the path of a file to replay")
    return detect_format(path)


def read_batches(path: Path) -> Iterator[list[RawEvent]]:
    reader = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet, "avro": _avro}
    yield from reader[check_readable(path)](path)


def _jsonl(path: Path) -> Iterator[list[RawEvent]]:
    batch: list[RawEvent] = []
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            value = line.rstrip(b"\r\n")
            if not value.strip():
                continue
            try:
                key = key_of(orjson.loads(value))
            except orjson.JSONDecodeError:
                key = None
            batch.append(RawEvent(value, key, number))
            if len(batch) >= BATCH_ROWS:
                yield batch
                batch = []
    if batch:
        yield batch


def _rows_to_events(rows: list[dict[str, Any]], first_row: int) -> list[RawEvent]:
    return [
        RawEvent(orjson.dumps(r, option=orjson.OPT_NAIVE_UTC), key_of(r), first_row + i)
        for i, r in enumerate(rows)
    ]


def _table_batches(batches: Iterator[pa.RecordBatch], first_row: int) -> Iterator[list[RawEvent]]:
    row = first_row
    for b in batches:
        yield _rows_to_events(b.to_pylist(), row)
        row += b.num_rows


def _csv(path: Path) -> Iterator[list[RawEvent]]:
    # Identifiers and times stay text: an account number keeps its leading zeros and an event time
    # reaches the validator as written. Numbers are typed so they travel as JSON numbers.
    convert = pacsv.ConvertOptions(
        column_types={"account_number": pa.string(), "event_time": pa.string()},
        strings_can_be_null=True,
    )
    read = pacsv.ReadOptions(block_size=4 << 20)
    try:
        reader = pacsv.open_csv(path, read_options=read, convert_options=convert)
        # Data rows start on line 2, after the header.
        yield from _table_batches(iter(reader), first_row=2)
    except pa.ArrowInvalid as exc:
        raise OperatorError(f"{path}: {exc}; fix the file or convert it to JSONL") from None


def _parquet(path: Path) -> Iterator[list[RawEvent]]:
    try:
        yield from _table_batches(pq.ParquetFile(path).iter_batches(BATCH_ROWS), first_row=1)
    except (pa.ArrowInvalid, OSError) as exc:
        raise OperatorError(f"{path}: not a readable Parquet file ({exc})") from None


def _avro(path: Path) -> Iterator[list[RawEvent]]:
    try:
        with path.open("rb") as f:
            batch: list[dict[str, Any]] = []
            first = 1
            for number, record in enumerate(fastavro.reader(f), start=1):
                batch.append(record)  # type: ignore[arg-type]
                if len(batch) >= BATCH_ROWS:
                    yield _rows_to_events(batch, first)
                    batch, first = [], number + 1
            if batch:
                yield _rows_to_events(batch, first)
    except (ValueError, EOFError) as exc:
        raise OperatorError(f"{path}: not a readable Avro container file ({exc})") from None
