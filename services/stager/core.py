"""Pure staging: Kafka records in, JSON-lines files (path + bytes) out. No Kafka imports.

One file per (topic, partition) in a batch, in the date folder of its first record's timestamp,
named `<topic>.p<partition>.o<first>-<last>.<writer>.jsonl`. A file counts once its offsets are
committed: a writer whose commit is refused deletes its files, and a new owner of a partition
deletes the files at or after the committed offset that crashed writers left (see the runner).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from headrace.contract import poison
from headrace.contract.envelope import Problem, as_dicts
from headrace.lake.zone_files import day_folder, file_name
from headrace.runtime.crash_points import poison_point

STAGE = "stager"


class Record(NamedTuple):  # a tuple, not a dataclass: one is built per event on the hot path
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
    isolated: int = 0  # records written as an UNPROCESSABLE line (see `_file`)


def text_or_base64(data: bytes | None, name: str) -> dict[str, Any]:
    """Readable text where the bytes are UTF-8, base64 where they are not (so nothing is lost)."""
    if data is None:
        return {name: None}
    try:
        return {name: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {f"{name}_base64": base64.b64encode(data).decode("ascii")}


def raw_line(r: Record) -> dict[str, Any]:
    line: dict[str, Any] = {
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp_ms": r.timestamp_ms,
    }
    # Inline rather than text_or_base64(): this runs once per event; the fallback is rare.
    key, value = r.key, r.value
    try:
        line["key"] = key if key is None else key.decode("utf-8")
    except UnicodeDecodeError:
        line.update(text_or_base64(key, "key"))
    line["headers"] = {k: v.decode("utf-8", "replace") for k, v in r.headers} if r.headers else {}
    try:
        line["value"] = value if value is None else value.decode("utf-8")
    except UnicodeDecodeError:
        line.update(text_or_base64(value, "value"))
    return line


def stage(
    zone: str, records: list[Record], to_line: Callable[[Record], dict[str, Any]], writer: str
) -> Iterator[StagedFile]:
    """The batch's files, built one at a time as they are taken: a caller that writes each
    before taking the next holds one file's lines in memory, not the whole batch's."""
    groups: dict[tuple[str, int], list[Record]] = {}
    for r in records:
        groups.setdefault((r.topic, r.partition), []).append(r)
    for rs in groups.values():
        yield _file(zone, rs, to_line, writer)


def _file(
    zone: str, rs: list[Record], to_line: Callable[[Record], dict[str, Any]], writer: str
) -> StagedFile:
    """One file's lines. A record whose line cannot be built is isolated and kept as an
    UNPROCESSABLE line with its bytes (`unprocessable_line`): the zone still holds every record.
    """
    first = rs[0]
    name = file_name(first.topic, first.partition, first.offset, rs[-1].offset, writer)
    path = f"{day_folder(zone, first.timestamp_ms)}/{name}"

    def lines(piece: Sequence[Record]) -> bytes:
        poison_point(STAGE, (r.value for r in piece))
        return _json_lines(to_line(r) for r in piece)

    def kept(x: poison.Isolated[Record]) -> bytes:
        return orjson.dumps(unprocessable_line(x.item, x.problem), option=orjson.OPT_APPEND_NEWLINE)

    parts, isolated = poison.isolate(rs, lines, STAGE, settle=kept)
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    return StagedFile(path, data, len(rs), len(isolated))


def unprocessable_line(r: Record, problem: Problem) -> dict[str, Any]:
    """The line of a record the stager could not write as usual: where it was, its bytes, why.

    Built from the record's numbers and bytes only (as text or base64), so it cannot fail.
    """
    return {
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp_ms": r.timestamp_ms,
        **text_or_base64(r.key, "key"),
        "headers": {},
        **text_or_base64(r.value, "value"),
        "reason": problem.reason,
        "stage": STAGE,
        "problems": as_dicts([problem]),
    }


def _json_lines(objs: Iterable[dict[str, Any]]) -> bytes:
    """Objects as JSON lines, appended to one buffer as each is dumped.

    Never a list of the lines: orjson returns each in a buffer of at least 4 KiB that it does not
    shrink, so holding a batch's lines cost ~4 KiB per ~400-byte line (87 MB of Python heap for
    20,000 events, most of the stager's peak); appended and dropped, each buffer is reused.
    """
    buf = bytearray()
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    for obj in objs:
        buf += dumps(obj, option=newline)
    return bytes(buf)
