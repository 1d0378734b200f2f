"""The error zone, read in one place: where its files are and how to scan them with DuckDB.

The stager writes the records of the `error` topic as JSON lines, one file per (topic, partition)
and batch, in `error/date=YYYY-MM-DD/` of the batch's first record (services/stager). A file is
never appended to: a redone batch rewrites the same bytes, so a file whose size did not change
needs no second read (`ErrorZoneTally`). Every reader scans the files with DuckDB's `read_json`
and explicit column types, so a scan's shape never depends on which lines it happens to meet.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb

from headrace.lake.bucket import Bucket

PATTERN = "error/date=*/*.jsonl"
DAY_IN_PATH = re.compile(r"/date=(\d{4}-\d{2}-\d{2})/")

# Every key an error-zone line can carry (the envelope, schemas/error_envelope.v1.avsc, as the
# stager writes it; a line whose envelope could not be decoded is the raw record instead).
COLUMNS: dict[str, str] = {
    "reason": "VARCHAR",
    "problems": "STRUCT(reason VARCHAR, field VARCHAR, message VARCHAR)[]",
    "stage": "VARCHAR",
    "validator_version": "VARCHAR",
    "source_topic": "VARCHAR",
    "source_partition": "INTEGER",
    "source_offset": "BIGINT",
    "source_timestamp_ms": "BIGINT",
    "rejected_at": "VARCHAR",
    "original": "VARCHAR",
    "original_base64": "VARCHAR",
    "error_offset": "BIGINT",
    "undecodable_envelope": "BOOLEAN",
}


def read_json(columns: Iterable[str] = COLUMNS, filename: bool = False) -> str:
    """A `read_json(?, ...)` table function over a list of files given as the one parameter."""
    wanted = ", ".join(f"'{c}': '{COLUMNS[c]}'" for c in columns)
    return (
        f"read_json(?, format = 'newline_delimited', columns = {{{wanted}}}, "
        f"filename = {'true' if filename else 'false'})"
    )


def day_of(path: str) -> date:
    """The date folder a file sits in."""
    found = DAY_IN_PATH.search(path)
    if not found:
        raise ValueError(f"{path} is not in a date=YYYY-MM-DD folder of the error zone")
    return date.fromisoformat(found.group(1))


def listing(bucket: Bucket) -> dict[str, int]:
    """Every error-zone file (a URL DuckDB can read) and its size in bytes."""
    found = bucket.fs.glob(bucket.url(PATTERN), detail=True)
    prefix = "" if bucket.is_local else "gs://"
    return {
        (p if p.startswith(prefix) else prefix + p): int(info.get("size") or 0)
        for p, info in found.items()
    }


def files(
    bucket: Bucket, since: date | None = None, until: date | None = None, also: Iterable[date] = ()
) -> list[str]:
    """The error-zone files that can hold records of events that entered raw from `since` to
    `until` (inclusive; None: no bound) or on one of the days `also`."""
    return dated_files(bucket, PATTERN, since, until, also)


def dated_files(
    bucket: Bucket,
    pattern: str,
    since: date | None = None,
    until: date | None = None,
    also: Iterable[date] = (),
) -> list[str]:
    """Files of a zone laid out by the stager (`<zone>/date=YYYY-MM-DD/*.jsonl`) for a day range.

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


@dataclass
class FileCounts:
    size: int
    day: date
    by_reason: dict[str, int]


TALLY_SQL = f"""
SELECT filename, coalesce(reason, 'UNKNOWN') AS reason, count(*) AS records
FROM {read_json(["reason"], filename=True)}
GROUP BY ALL
"""


@dataclass
class ErrorZoneTally:
    """Records per file and reason, reading only files that are new or changed since the last
    update: each update is one DuckDB scan of those files, and a restart reads the zone once."""

    bucket: Bucket
    files: dict[str, FileCounts] = field(default_factory=dict)

    def update(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Count the files that are new or changed since the last update; True if any were."""
        sizes = listing(self.bucket)
        changed = sorted(
            p for p, size in sizes.items() if p not in self.files or self.files[p].size != size
        )
        gone = [p for p in self.files if p not in sizes]
        for p in gone:
            del self.files[p]
        if changed:
            counts: dict[str, dict[str, int]] = {p: {} for p in changed}
            for name, reason, n in con.execute(TALLY_SQL, [changed]).fetchall():
                counts[name][reason] = int(n)
            for p in changed:
                self.files[p] = FileCounts(sizes[p], day_of(p), counts[p])
        return bool(changed or gone)

    def total(self) -> int:
        return sum(n for f in self.files.values() for n in f.by_reason.values())

    def counts_by_day_and_reason(self) -> dict[tuple[date, str], int]:
        """Records by (folder day, reason)."""
        merged: dict[tuple[date, str], int] = {}
        for f in self.files.values():
            for reason, n in f.by_reason.items():
                merged[(f.day, reason)] = merged.get((f.day, reason), 0) + n
        return merged
