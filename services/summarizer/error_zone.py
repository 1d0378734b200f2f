"""Errors by day and reason for the marts snapshot, counted from the error zone incrementally.

The reading (which files, one DuckDB scan of the new or changed ones) is `headrace.lake.error_zone`;
this module only shapes the tally as the snapshot's `error_daily_reason` table.
"""

from __future__ import annotations

import pyarrow as pa

from headrace.lake import error_zone

SCHEMA = pa.schema([("date", pa.date32()), ("reason", pa.string()), ("records", pa.int64())])


class ErrorZoneTally(error_zone.ErrorZoneTally):
    def by_day_and_reason(self) -> pa.Table:
        merged = self.counts_by_day_and_reason()
        keys = sorted(merged)
        return pa.table(
            [[d for d, _ in keys], [r for _, r in keys], [merged[k] for k in keys]], schema=SCHEMA
        )
