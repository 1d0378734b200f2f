"""The error zone, read in one place: where its files are, how to scan them, what they hold.

The stager writes the records of the `error` topic as JSON lines, one file per (topic, partition)
and batch, in `error/date=YYYY-MM-DD/` of the batch's first record (services/stager; the loader
writes each of its own rejections as a file of one record). A file is never appended to: a redone
batch rewrites the same bytes, so a file whose size did not change needs no second read
(`ErrorZoneTally`). Every DuckDB scan uses `read_json` with explicit column types, so a scan's
shape never depends on which lines it happens to meet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import duckdb

from headrace.lake import zone_files
from headrace.lake.bucket import Bucket

PATTERN = "error/date=*/*.jsonl"

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
    return zone_files.dated_files(bucket, PATTERN, since, until, also)


def records(bucket: Bucket) -> list[dict[str, Any]]:
    """Every record of the error zone, parsed (for checks that look at each one)."""
    return zone_files.records(bucket, PATTERN)


MS_PER_DAY = 86_400_000
EPOCH = date(1970, 1, 1)


@dataclass
class FileCounts:
    size: int
    day: date  # the folder's
    # Records by (reason, the day their event entered raw as days since 1970-01-01; None
    # when the record does not say).
    counts: dict[tuple[str, int | None], int]


TALLY_SQL = f"""
SELECT filename, coalesce(reason, 'UNKNOWN') AS reason,
       CAST(fdiv(source_timestamp_ms, {MS_PER_DAY}) AS BIGINT) AS arrival_day, count(*) AS records
FROM {read_json(["reason", "source_timestamp_ms"], filename=True)}
GROUP BY ALL
"""


@dataclass
class ErrorZoneTally:
    """Records per file, reason and arrival day, reading only files that are new or changed since
    the last update: each update is one DuckDB scan of those files, and a restart reads the zone
    once."""

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
            counts: dict[str, dict[tuple[str, int | None], int]] = {p: {} for p in changed}
            for name, reason, arrival_day, n in con.execute(TALLY_SQL, [changed]).fetchall():
                counts[name][(reason, arrival_day)] = int(n)
            for p in changed:
                self.files[p] = FileCounts(sizes[p], zone_files.day_of(p), counts[p])
        return bool(changed or gone)

    def total(self) -> int:
        return sum(n for f in self.files.values() for n in f.counts.values())

    def by_reason(self) -> dict[str, int]:
        """Records by reason, the most frequent first."""
        merged: dict[str, int] = {}
        for f in self.files.values():
            for (reason, _), n in f.counts.items():
                merged[reason] = merged.get(reason, 0) + n
        return dict(sorted(merged.items(), key=lambda kv: (-kv[1], kv[0])))

    def by_folder_day_and_reason(self) -> dict[tuple[date, str], int]:
        """Records by (the date folder of their file, reason)."""
        merged: dict[tuple[date, str], int] = {}
        for f in self.files.values():
            for (reason, _), n in f.counts.items():
                merged[(f.day, reason)] = merged.get((f.day, reason), 0) + n
        return merged

    def by_arrival_day(self, days: Iterable[date]) -> dict[date, int]:
        """Records of each of `days` by the UTC day their event entered raw (its timestamp)."""
        wanted = {(d - EPOCH).days: d for d in days}
        merged = dict.fromkeys(wanted.values(), 0)
        for f in self.files.values():
            for (_, arrival_day), n in f.counts.items():
                if arrival_day in wanted:
                    merged[wanted[arrival_day]] += n
        return merged
