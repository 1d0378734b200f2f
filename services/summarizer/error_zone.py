"""Errors by day and reason, counted from the error zone incrementally.

The stager writes each batch's rejected events as one JSON-lines file in the date folder of its
first record, and never appends to a file (a redone batch rewrites the same bytes). So a file
needs reading only when it is new or its size changed: each tally reads those files alone, in one
DuckDB scan grouped by file, and keeps per-file counts. A restart reads the zone once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

import duckdb
import pyarrow as pa

from headrace.bucket import Bucket

PATTERN = "error/date=*/*.jsonl"
DAY_IN_PATH = re.compile(r"/date=(\d{4}-\d{2}-\d{2})/")
SCHEMA = pa.schema([("date", pa.date32()), ("reason", pa.string()), ("records", pa.int64())])

READ_SQL = """
SELECT filename, coalesce(reason, 'UNKNOWN') AS reason, count(*) AS records
FROM read_json(?, format = 'newline_delimited', columns = {'reason': 'VARCHAR'}, filename = true)
GROUP BY ALL
"""


@dataclass
class FileCounts:
    size: int
    day: date
    by_reason: dict[str, int]


@dataclass
class ErrorZoneTally:
    bucket: Bucket
    files: dict[str, FileCounts] = field(default_factory=dict)

    def update(self, con: duckdb.DuckDBPyConnection) -> bool:
        """Count the files that are new or changed since the last update; True if any were."""
        sizes = self._listing()
        changed = sorted(
            p for p, size in sizes.items() if p not in self.files or self.files[p].size != size
        )
        gone = [p for p in self.files if p not in sizes]
        for p in gone:
            del self.files[p]
        if changed:
            counts: dict[str, dict[str, int]] = {p: {} for p in changed}
            for name, reason, n in con.execute(READ_SQL, [changed]).fetchall():
                counts[name][reason] = int(n)
            for p in changed:
                self.files[p] = FileCounts(sizes[p], _day_of(p), counts[p])
        return bool(changed or gone)

    def total(self) -> int:
        return sum(n for f in self.files.values() for n in f.by_reason.values())

    def by_day_and_reason(self) -> pa.Table:
        merged: dict[tuple[date, str], int] = {}
        for f in self.files.values():
            for reason, n in f.by_reason.items():
                merged[(f.day, reason)] = merged.get((f.day, reason), 0) + n
        keys = sorted(merged)
        return pa.table(
            [[d for d, _ in keys], [r for _, r in keys], [merged[k] for k in keys]], schema=SCHEMA
        )

    def _listing(self) -> dict[str, int]:
        found = self.bucket.fs.glob(self.bucket.url(PATTERN), detail=True)
        prefix = "" if self.bucket.is_local else "gs://"
        return {
            (p if p.startswith(prefix) else prefix + p): int(info.get("size") or 0)
            for p, info in found.items()
        }


def _day_of(path: str) -> date:
    found = DAY_IN_PATH.search(path)
    if not found:
        raise ValueError(f"{path} is not in a date=YYYY-MM-DD folder of the error zone")
    return date.fromisoformat(found.group(1))
