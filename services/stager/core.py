"""Pure staging: Kafka records in, JSON-lines files (path + bytes) out. No Kafka imports.

One file per (topic, partition) in a batch, named after the topic, partition and first offset and
put in the date folder of its first record's timestamp. A batch redone after a crash starts at the
same offset and so rewrites the same file: the zone never holds a record twice.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass(frozen=True)
class StagedFile:
    path: str
    data: bytes
    records: int


def text_or_base64(data: bytes | None, name: str) -> dict[str, Any]:
    """Readable text where the bytes are UTF-8, base64 where they are not (so nothing is lost)."""
    if data is None:
        return {name: None}
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(data).decode("ascii")}


def raw_line(r: Record) -> dict[str, Any]:
    return {
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp_ms": r.timestamp_ms,
        **text_or_base64(r.key, "key"),
        "headers": {k: v.decode("utf-8", "replace") for k, v in r.headers},
        **text_or_base64(r.value, "value"),
    }


def stage(
    zone: str, records: list[Record], to_line: Callable[[Record], dict[str, Any]]
) -> list[StagedFile]:
    groups: dict[tuple[str, int], list[Record]] = {}
    for r in records:
        groups.setdefault((r.topic, r.partition), []).append(r)
    return [_file(zone, rs, to_line) for rs in groups.values()]


def _file(zone: str, rs: list[Record], to_line: Callable[[Record], dict[str, Any]]) -> StagedFile:
    first = rs[0]
    day = datetime.fromtimestamp(first.timestamp_ms / 1000, UTC).strftime("%Y-%m-%d")
    path = f"{zone}/date={day}/{first.topic}-{first.partition:03d}-{first.offset:020d}.jsonl"
    data = b"".join(_lines(to_line(r) for r in rs))
    return StagedFile(path, data, len(rs))


def _lines(objs: Iterable[dict[str, Any]]) -> Iterable[bytes]:
    for obj in objs:
        yield orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
