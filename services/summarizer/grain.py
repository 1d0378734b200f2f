"""The fact rows at the finest grain any mart needs, kept by the summarizer and extended per batch.

A refresh replaces the marts' rows of every day its batches touched. Recomputing those days from
`transaction_fact` reads every row of them, and events spread over many days (late events, a
backfill, the fault suite's 30 days) make that nearly the whole table on every refresh: the
refresh got slower as the warehouse grew, held its memory, and its lag never returned to 0 in
time under faults. Instead the summarizer reads the whole table once, at mart grain (day, UTC
hour, region, account type, status, with sums, counts and maxima, which merge exactly), and then
only the fact rows of load batches it has not read yet: one small read per batch, pruned to the
batch's files by their batch_id statistics.

Fact rows never change once their batch committed (the loader's one transaction writes them
with their `load_batch` row), so what this holds stays true whatever other summarizers do; it
only grows with new batches. Memory: one row per (day, hour, region, account type, status) seen.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa

GRAIN_SQL = """
SELECT f.time_id,
       -- the UTC hour from the instant's microseconds (AT TIME ZONE per row costs 6x)
       date_trunc('hour', make_timestamp(epoch_us(f.event_time))) AS hour_utc,
       a.customer_region, a.account_type, f.status,
       count(*)                          AS txn_count,
       sum(f.amount)                     AS total_amount,
       sum(f.processing_duration)        AS duration_sum,
       count(f.processing_duration)      AS duration_count,
       max(f.event_time)                 AS newest_event_time,
       max(f.load_timestamp)             AS last_load_time
FROM transaction_fact f
JOIN account_view a USING (account_id)
{where}
GROUP BY ALL
"""

# The batch ids go in as a subquery: DuckDB turns it into a join filter that DuckLake uses to
# skip every file whose batch_id range misses them (an IN list of literals does too, a list
# function does not).
NEW_BATCHES = "WHERE f.batch_id IN (SELECT unnest($batch_ids))"

MERGE_SQL = """
SELECT time_id, hour_utc, customer_region, account_type, status,
       CAST(sum(txn_count) AS BIGINT)      AS txn_count,
       sum(total_amount)                   AS total_amount,
       sum(duration_sum)                   AS duration_sum,
       CAST(sum(duration_count) AS BIGINT) AS duration_count,
       max(newest_event_time)              AS newest_event_time,
       max(last_load_time)                 AS last_load_time
FROM grain_parts
GROUP BY ALL
ORDER BY time_id
"""


class DayGrain:
    """Per day (time_id), the fact rows of the load batches read so far, at mart grain."""

    def __init__(self) -> None:
        self.days: dict[int, pa.Table] = {}
        self.batches: set[str] = set()

    def catch_up(self, con: duckdb.DuckDBPyConnection) -> None:
        """Read the batches of `load_batch` not read yet (all of them the first time)."""
        loaded = {b for (b,) in con.execute("SELECT batch_id FROM load_batch").fetchall()}
        new = loaded - self.batches
        if not new:
            return
        if self.batches:
            got = con.execute(GRAIN_SQL.format(where=NEW_BATCHES), {"batch_ids": sorted(new)})
        else:
            got = con.execute(GRAIN_SQL.format(where=""))
        self._merge(con, got.to_arrow_table())
        self.batches |= new

    def rows(self, days: list[int]) -> pa.Table | None:
        """The rows of `days` (None if none of them has any)."""
        tables = [self.days[d] for d in days if d in self.days]
        return pa.concat_tables(tables) if tables else None

    def _merge(self, con: duckdb.DuckDBPyConnection, delta: pa.Table) -> None:
        if not delta.num_rows:
            return
        touched = np.unique(delta.column("time_id").to_numpy())
        parts = [self.days[int(d)] for d in touched if int(d) in self.days]
        con.register("grain_parts", pa.concat_tables([*parts, delta]))
        try:
            merged = con.execute(MERGE_SQL).to_arrow_table()
        finally:
            con.unregister("grain_parts")
        # Sorted by day: one zero-copy slice per day.
        days, starts = np.unique(merged.column("time_id").to_numpy(), return_index=True)
        ends = [*starts[1:], merged.num_rows]
        for day, start, end in zip(days, starts, ends, strict=True):
            self.days[int(day)] = merged.slice(int(start), int(end - start))
