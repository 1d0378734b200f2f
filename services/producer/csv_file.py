"""CSV files (RFC 4180: comma, double quotes, "" for a quote inside quotes; UTF-8, optional BOM,
LF or CRLF line endings, quoted fields may hold commas and line breaks).

The header names the JSON fields: each name is trimmed, lower-cased, and inner runs of spaces
become one `_` ("  Transaction ID" -> "transaction_id"). Two columns with the same name after
that, a column without a name, or a header that names no field of the contract (a file without
a header line, whose first event would be taken for one) make the file unreadable.

pyarrow parses the file (in C++) in both passes. Its errors do not say where in the file they
are, so when the check fails, Python's csv module re-reads the file to find the physical line
(the line an editor shows) to fix; that slow pass runs only for a broken file. An unclosed quote
is not an error to pyarrow (the field runs to the end of the file), so the check also counts the
file's quote characters: an odd count sends the file through the same line-finding pass.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from headrace.runtime.errors import OperatorError
from services.producer.csv_json import Kind, field_kinds, json_objects
from services.producer.events import MAX_EVENT_BYTES, RawEvent

__all__ = ["Layout", "batches", "check", "field_kinds", "normalize"]

_BLOCK = 4 << 20


@dataclass(frozen=True)
class Layout:
    """What the check learned: the header as written, the field names, the row count."""

    header: list[str]
    names: list[str]
    kinds: dict[str, Kind]
    rows: int


class _Unreadable(Exception):
    """A problem at a line of the file (the message starts with the line)."""


def normalize(name: str) -> str:
    return "_".join(name.split()).lower()


def check(path: Path, kinds: dict[str, Kind]) -> Layout:
    """Read the whole file once; raise an OperatorError naming the first line that is wrong."""
    header = _header(path)
    names = _names(path, header)
    rows = 0
    try:
        for b in _reader(path, header):
            _check_sizes(path, b, first_record=rows + 2)
            rows += b.num_rows
    except pa.ArrowInvalid as exc:
        raise OperatorError(f"{path}: {_locate(path, len(header)) or exc}") from None
    if _odd_quotes(path) and (problem := _locate(path, len(header))):
        raise OperatorError(f"{path}: {problem}")
    if kinds and not kinds.keys() & set(names):
        # A file without a header row: its first event would become the header and every other
        # event would miss every field. Refused, since no header names none of the fields.
        raise OperatorError(
            f"{path}: line 1 (the header) names no field of the contract "
            f"({', '.join(list(kinds)[:4])}, ...); the first line of a CSV file names its "
            "columns: add a header line"
        )
    return Layout(header, names, kinds, rows)


def batches(path: Path, layout: Layout) -> Iterator[list[RawEvent]]:
    record = 2  # the header is record 1
    key_at = layout.names.index("transaction_id") if "transaction_id" in layout.names else None
    for b in _reader(path, layout.header):
        values = json_objects(b, layout.names, layout.kinds)
        if key_at is None:
            keys: list[bytes | None] = [None] * b.num_rows
        else:
            keys = pc.cast(b.column(key_at), pa.binary()).to_pylist()
        yield [
            RawEvent(v, k, record + i) for i, (v, k) in enumerate(zip(values, keys, strict=True))
        ]
        record += b.num_rows


def _reader(path: Path, header: list[str]) -> pacsv.CSVStreamingReader:
    # Every column is text: typing is the schema's business (csv_json), and reading text makes
    # pyarrow check that the file is UTF-8. Only empty cells are null: the default null markers
    # include "NA", a region code.
    convert = pacsv.ConvertOptions(
        column_types={h: pa.string() for h in header},
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_BLOCK),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=convert,
    )


def _header(path: Path) -> list[str]:
    with path.open("rb") as f:
        try:
            header = next(csv.reader(_text_lines(f), strict=True), None)
        except _Unreadable as exc:
            raise OperatorError(f"{path}: {exc}") from None
        except csv.Error as exc:
            raise OperatorError(f"{path}: line 1 (the header): {exc}") from None
    if not header:
        raise OperatorError(f"{path}: empty file; a CSV file starts with a header line")
    return header


def _names(path: Path, header: list[str]) -> list[str]:
    names = [normalize(h) for h in header]
    for i, name in enumerate(names, start=1):
        if not name:
            raise OperatorError(f"{path}: line 1 (the header): column {i} has no name")
        first = names.index(name) + 1
        if first != i:
            raise OperatorError(
                f"{path}: line 1 (the header): columns {first} and {i} are both {name!r} "
                "once case and spaces are ignored"
            )
    return names


def _check_sizes(path: Path, batch: pa.RecordBatch, first_record: int) -> None:
    """A row too large for a Kafka message is a file error: it could never be published."""
    sizes = None
    for column in batch.columns:
        length = pc.fill_null(pc.binary_length(column), 0)
        sizes = length if sizes is None else pc.add(sizes, length)
    if sizes is None or pc.max(sizes).as_py() <= MAX_EVENT_BYTES:
        return
    index = pc.index(pc.greater(sizes, MAX_EVENT_BYTES), True).as_py()
    raise OperatorError(
        f"{path}: record {first_record + index}: more than the {MAX_EVENT_BYTES:,} bytes a "
        "Kafka message can hold; split or shorten that row"
    )


def _odd_quotes(path: Path) -> bool:
    count = 0
    with path.open("rb") as f:
        while chunk := f.read(_BLOCK):
            count += chunk.count(b'"')
    return count % 2 == 1


def _text_lines(f: IO[bytes]) -> Iterator[str]:
    """The file's physical lines as text; a line that is not UTF-8 raises _Unreadable."""
    for number, raw in enumerate(f, start=1):
        try:
            yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as bad:
            raise _Unreadable(
                f"line {number}: not UTF-8 (byte 0x{raw[bad.start]:02x} at column "
                f"{bad.start + 1}); save the file as UTF-8"
            ) from None


def _locate(path: Path, columns: int) -> str | None:
    """The first problem, as `line N: what is wrong`, or None if Python's csv finds none."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_EVENT_BYTES))
    with path.open("rb") as f:
        reader = csv.reader(_text_lines(f), strict=True)
        start = 1  # the line the record being read starts on
        try:
            for row in reader:
                if row and len(row) != columns:
                    return f"line {start}: {len(row)} fields where the header has {columns}"
                start = reader.line_num + 1
        except _Unreadable as exc:
            return str(exc)
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                return f"line {start}: a quoted field opened on this line is never closed"
            return f"line {start}: {exc}"
    return None
