"""How the zones' files are named and foldered, for the writers (stager, loader) and their readers.

`<zone>/date=YYYY-MM-DD/<topic>.p<partition>.o<first>-<last>.<writer>.jsonl`: the date folder of
the file's first record, the offsets it holds and who wrote it. A file counts once the offsets it
holds are durable for its writer (the stager's committed offsets, the loader's ledger), so a new
owner of a partition deletes the files at or after that point that writers which died left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

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
