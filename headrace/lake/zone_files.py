"""How the zones' files are named and foldered, for the writers (stager, loader) and their readers.

`<zone>/date=YYYY-MM-DD/<topic>.p<partition>.o<first>-<last>.<writer>.jsonl`: the date folder of
the file's first record, the offsets it holds and who wrote it. A file counts once the offsets it
holds are durable for its writer (the stager's committed offsets, the loader's ledger), so a new
owner of a partition deletes the files at or after that point that writers which died left.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from headrace.lake.bucket import Bucket

_DAY_IN_PATH = re.compile(r"/date=(\d{4}-\d{2}-\d{2})/")
_NAME = re.compile(
    r"(?P<topic>[^/]+)\.p(?P<partition>\d{3,})\.o(?P<first>\d{20})-(?P<last>\d{20})"
    r"\.(?P<writer>[\w-]+)\.jsonl$"
)
# Kafka timestamps are any int64 milliseconds; a date folder needs a year Python can write.
_FIRST_MS = int(datetime(1, 1, 1, tzinfo=UTC).timestamp() * 1000)
_LAST_MS = int(datetime(9999, 12, 31, tzinfo=UTC).timestamp() * 1000)


@dataclass(frozen=True)
class ZoneFileName:
    topic: str
    partition: int
    first: int
    last: int
    writer: str


def file_name(topic: str, partition: int, first: int, last: int, writer: str) -> str:
    return f"{topic}.p{partition:03d}.o{first:020d}-{last:020d}.{safe_writer(writer)}.jsonl"


def parse_name(path: str) -> ZoneFileName | None:
    m = _NAME.search(path.rsplit("/", 1)[-1])
    if m is None:
        return None
    g = m.groupdict()
    return ZoneFileName(
        g["topic"], int(g["partition"]), int(g["first"]), int(g["last"]), g["writer"]
    )


def safe_writer(instance_id: str) -> str:
    return re.sub(r"[^\w-]", "_", instance_id)


def day_folder(zone: str, timestamp_ms: int) -> str:
    """`<zone>/date=YYYY-MM-DD` of a record's timestamp (clamped to the years 1 to 9999)."""
    ms = min(max(timestamp_ms, _FIRST_MS), _LAST_MS)
    return f"{zone}/date={datetime.fromtimestamp(ms / 1000, UTC).date().isoformat()}"


def day_of(path: str) -> date:
    """The date folder a file sits in."""
    found = _DAY_IN_PATH.search(path)
    if not found:
        raise ValueError(f"{path} is not in a date=YYYY-MM-DD folder of a zone")
    return date.fromisoformat(found.group(1))


def dated_files(
    bucket: Bucket,
    pattern: str,
    since: date | None = None,
    until: date | None = None,
    also: Iterable[date] = (),
) -> list[str]:
    """Files of a zone (`pattern`: `<zone>/date=*/*.jsonl`) that can hold records of events that
    entered raw from `since` to `until` (inclusive; None: no bound) or on one of the days `also`.

    A file sits in the folder of its batch's first record, so a batch that spans midnight puts
    records of day D in folder D-1: each range starts one folder earlier.
    """
    first = since - timedelta(days=1) if since else None
    extra = {d - timedelta(days=n) for d in also for n in (0, 1)}
    return sorted(
        f
        for f in bucket.glob(pattern)
        if ((first is None or day_of(f) >= first) and (until is None or day_of(f) <= until))
        or day_of(f) in extra
    )


def records(bucket: Bucket, pattern: str) -> list[dict[str, Any]]:
    """Every JSON line of the files `pattern` matches, parsed. A file still being written has a
    temporary name, which `*.jsonl` does not match."""
    return [
        orjson.loads(line)
        for f in bucket.glob(pattern)
        for line in bucket.read_bytes(f).splitlines()
    ]
