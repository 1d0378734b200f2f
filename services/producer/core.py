"""Reading upstream files into raw messages. Pure: no Kafka imports.

A file is opened in two passes. `open_file` reads the whole file once to prove it is structurally
readable (and to count its rows); only then does `CheckedFile.batches()` read it again to yield
`RawEvent`s. So a malformed file publishes nothing, and the error names the line (CSV), row
(Parquet) or record (Avro) to fix: the all-or-none rule of docs/ingest.md.

JSONL lines are sent exactly as they are (bytes as received, bad lines included: the validator,
not the producer, decides what is wrong). Rows of CSV, Parquet and Avro files are serialized to
JSON objects. The message key is the transaction_id where one can be read, so every copy of a
transaction lands in the same partition (the loader's first-wins duplicate rule relies on that).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from headrace.runtime.errors import OperatorError
from headrace.runtime.paths import SCHEMAS_DIR
from services.producer import avro_file, csv_file, jsonl_file, parquet_file
from services.producer.events import RawEvent, key_of, key_of_json

__all__ = ["CheckedFile", "RawEvent", "key_of", "key_of_json", "open_file", "read_batches"]

FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".avro": "avro",
}


@dataclass(frozen=True)
class CheckedFile:
    """A file whose every row could be read; `batches()` reads it again to publish it."""

    path: Path
    format: str
    rows: int
    batches: Callable[[], Iterator[list[RawEvent]]]


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OperatorError(
            f"{path}: unknown file type {path.suffix!r}; use .jsonl, .csv, .parquet or .avro"
        )
    return fmt


def check_readable(path: Path) -> str:
    """The file's format, or an operator error when it is missing or of an unknown type."""
    if not path.is_file():
        raise OperatorError(f"{path}: no such file; give the path of a file to replay")
    return detect_format(path)


def open_file(path: Path, schemas_dir: Path = SCHEMAS_DIR) -> CheckedFile:
    """Check the whole file (first pass); a one-line OperatorError if any of it is unreadable."""
    fmt = check_readable(path)
    if fmt == "jsonl":
        rows = jsonl_file.check(path)
        return CheckedFile(path, fmt, rows, lambda: jsonl_file.batches(path))
    if fmt == "csv":
        layout = csv_file.check(path, csv_file.field_kinds(schemas_dir))
        return CheckedFile(path, fmt, layout.rows, lambda: csv_file.batches(path, layout))
    if fmt == "parquet":
        rows = parquet_file.check(path)
        return CheckedFile(path, fmt, rows, lambda: parquet_file.batches(path))
    rows = avro_file.check(path)
    return CheckedFile(path, fmt, rows, lambda: avro_file.batches(path))


def read_batches(path: Path, schemas_dir: Path = SCHEMAS_DIR) -> Iterator[list[RawEvent]]:
    """Both passes: nothing is yielded unless the whole file is readable."""
    yield from open_file(path, schemas_dir).batches()
