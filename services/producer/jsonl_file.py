"""JSONL files: one message per non-blank line, bytes as they are.

A line that is not JSON is not a file error: it is an event the validator rejects with PARSE (or
ENCODING), so it is published like any other. The only file errors are lines Kafka cannot carry.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from headrace.runtime.errors import OperatorError
from services.producer.events import BATCH_ROWS, MAX_EVENT_BYTES, RawEvent, key_of_json

_BOM = b"\xef\xbb\xbf"


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its line ending) for every line that is not blank."""
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            value = line.rstrip(b"\r\n")
            if number == 1 and value.startswith(_BOM):
                value = value[len(_BOM) :]  # a file's byte order mark, not part of the event
            if value.strip():
                yield number, value


def check(path: Path) -> int:
    """The number of events in the file; an error names the first line too large for Kafka."""
    events = 0
    for number, value in _lines(path):
        if len(value) > MAX_EVENT_BYTES:
            raise OperatorError(
                f"{path}: line {number}: {len(value):,} bytes, more than the {MAX_EVENT_BYTES:,} "
                "a Kafka message can hold; split or shorten that event"
            )
        events += 1
    return events


def batches(path: Path) -> Iterator[list[RawEvent]]:
    batch: list[RawEvent] = []
    for number, value in _lines(path):
        batch.append(RawEvent(value, key_of_json(value), number))
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch
