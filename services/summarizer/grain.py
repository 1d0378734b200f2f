"""The fact rows at the finest grain any mart needs, kept in the warehouse's `mart_grain` table.

A refresh replaces the marts' rows of every day its batches touched. Recomputing those days from
`transaction_fact` reads every row of them, and events spread over many days (late events, a
backfill, the fault suite's 30 days) make that nearly the whole table on every refresh. Instead
the grain (day, UTC hour, region, account type, status, with sums, counts and maxima, which
merge exactly) is kept: a refresh reads the grain rows of its days, merges in the fact rows of
its batches only (one small read, pruned to the batches' files by their batch_id statistics),
and writes the merged rows back with the marts, in the transaction that marks the batches
summarized (services/summarizer/core.py).

The table, not the process, holds the grain, so a summarizer that restarts reads what is pending
and nothing more, and every replica reads the same grain: it covers exactly the batches in
`summary_refresh`. Fact rows never change once their batch committed (the loader's one
transaction writes them with their `load_batch` row), so what it holds stays true.
"""

from __future__ import annotations

import duckdb
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

# The grain of a refresh's days: the rows kept for them merged with its batches' fact rows.
MERGE_SQL = f"""
WITH grain_parts AS (
    SELECT * FROM mart_grain WHERE time_id IN (SELECT unnest($days))
    UNION ALL BY NAME
    ({GRAIN_SQL.format(where=NEW_BATCHES)})
)
SELECT time_id, hour_utc, customer_region, account_type, status,
       CAST(sum(txn_count) AS BIGINT)      AS txn_count,
       sum(total_amount)                   AS total_amount,
       sum(duration_sum)                   AS duration_sum,
       CAST(sum(duration_count) AS BIGINT) AS duration_count,
       max(newest_event_time)              AS newest_event_time,
       max(last_load_time)                 AS last_load_time
FROM grain_parts
GROUP BY ALL
"""


def read_grain(
    con: duckdb.DuckDBPyConnection, batch_ids: list[str], days: list[int]
) -> pa.Table | None:
    """The grain of `days` once `batch_ids` are added to it (None if it has no row)."""
    merged = con.execute(MERGE_SQL, {"days": days, "batch_ids": batch_ids}).to_arrow_table()
    return merged if merged.num_rows else None
