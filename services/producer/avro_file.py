"""Avro object container files: each record as a JSON object.

The check decodes every record: a truncated or damaged block shows only when it is read, and the
decoder is the one thing that can say which record it stopped at.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import fastavro

from headrace.runtime.errors import OperatorError
from services.producer.events import BATCH_ROWS, RawEvent, rows_to_events


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as f:
        try:
            reader = fastavro.reader(f)
        except Exception as exc:  # fastavro raises ValueError, EOFError, KeyError... on bad headers
            raise OperatorError(
                f"{path}: not an Avro object container file ({exc or type(exc).__name__})"
            ) from None
        # fastavro types a record as any Avro value; an event file's records are objects.
        yield from cast(Iterator[dict[str, Any]], reader)


def check(path: Path) -> int:
    """The number of records; an error names the first record that could not be read."""
    count = 0
    records = _records(path)
    while True:
        try:
            next(records)
        except StopIteration:
            return count
        except OperatorError:
            raise
        except Exception as exc:  # a damaged block surfaces as any of several exception types
            detail = str(exc) or type(exc).__name__
            raise OperatorError(
                f"{path}: record {count + 1} is unreadable ({detail}); "
                f"{count:,} records before it were read, none published; the file is truncated "
                "or damaged, write it again"
            ) from None
        count += 1


def batches(path: Path) -> Iterator[list[RawEvent]]:
    batch: list[dict[str, Any]] = []
    first = 1
    for number, record in enumerate(_records(path), start=1):
        batch.append(record)
        if len(batch) >= BATCH_ROWS:
            yield rows_to_events(batch, first)
            batch, first = [], number + 1
    if batch:
        yield rows_to_events(batch, first)
