"""Parquet files: each row as a JSON object.

The check decodes every row group (in C++, without building Python objects), because a damaged
page shows only when it is decoded; a truncated file has lost its footer and fails at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from headrace.runtime.errors import OperatorError
from services.producer.events import BATCH_ROWS, RawEvent, rows_to_events


def _open(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise OperatorError(
            f"{path}: not a readable Parquet file, or truncated (footer unreadable: {exc})"
        ) from None


def check(path: Path) -> int:
    """The number of rows; an error names the row group and its first row."""
    pf = _open(path)
    first = 1
    for group in range(pf.num_row_groups):
        rows = pf.metadata.row_group(group).num_rows
        try:
            for _ in pf.iter_batches(BATCH_ROWS, row_groups=[group]):
                pass
        except (pa.ArrowException, OSError) as exc:
            raise OperatorError(
                f"{path}: rows {first}-{first + rows - 1} (row group {group}) are unreadable "
                f"({exc}); the file is damaged, write it again"
            ) from None
        first += rows
    return first - 1


def batches(path: Path) -> Iterator[list[RawEvent]]:
    row = 1
    for b in _open(path).iter_batches(BATCH_ROWS):
        yield rows_to_events(_python_ready(b).to_pylist(), row)
        row += b.num_rows


def _python_ready(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Nanosecond columns as Python can hold them: Python's datetime, time and timedelta stop at
    microseconds, so a timestamp with nanoseconds becomes its ISO 8601 text (UTC, `Z`), and
    nanosecond times and durations their text."""
    columns = []
    for column in batch.columns:
        kind = column.type
        if pa.types.is_timestamp(kind) and kind.unit == "ns":
            utc = column.cast(pa.timestamp("ns", tz="UTC"))
            column = pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ")
        elif (pa.types.is_time64(kind) or pa.types.is_duration(kind)) and kind.unit == "ns":
            column = column.cast(pa.string())
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)
