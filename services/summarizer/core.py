"""The mart refresh, as SQL on the warehouse: only the days of batches not yet summarized.

A refresh reads load_batch for batches missing from summary_refresh, so a manifest that never
arrived (loader killed between its commit and its announcement) is caught up by the next refresh,
and a manifest seen twice changes nothing. The fact rows of those days are read once, into a
temporary table at the finest grain any mart needs (day, UTC hour, region, account type,
status); every mart's rows for those days are then replaced from it. The dimensions are read
through one row per key, so a key inserted twice by two loader replicas at once cannot double a
count.
"""

from __future__ import annotations

import duckdb

DEFAULT_HOURLY_DAYS = 7

PENDING_SQL = """
SELECT batch_id, days FROM load_batch
WHERE batch_id NOT IN (SELECT batch_id FROM summary_refresh)
"""

# {days} is a list of integer literals (time_id values), so DuckLake can prune by partition.
GRAIN_SQL = """
CREATE OR REPLACE TEMP TABLE mart_grain AS
SELECT f.time_id,
       date_trunc('hour', f.event_time AT TIME ZONE 'UTC') AS hour_utc,
       a.customer_region, a.account_type, f.status,
       count(*)                          AS txn_count,
       sum(f.amount)                     AS total_amount,
       sum(f.processing_duration)        AS duration_sum,
       count(f.processing_duration)      AS duration_count,
       max(f.event_time)                 AS newest_event_time,
       max(f.load_timestamp)             AS last_load_time
FROM transaction_fact f
JOIN account_view a USING (account_id)
WHERE f.time_id IN ({days})
GROUP BY ALL
"""

REPLACE_SQL = (
    """
    DELETE FROM transaction_daily_summary
    WHERE CAST(year AS INTEGER) * 10000 + CAST(month AS INTEGER) * 100 + day IN ({days})
    """,
    """
    INSERT INTO transaction_daily_summary
        (year, month, day, customer_region, txn_count, total_amount, avg_processing_duration,
         date)
    SELECT t.year, t.month, t.day, g.customer_region, sum(g.txn_count), sum(g.total_amount),
           sum(g.duration_sum) / sum(g.duration_count), t.date
    FROM mart_grain g JOIN calendar_view t USING (time_id)
    GROUP BY ALL
    """,
    "DELETE FROM daily_status_account_summary WHERE time_id IN ({days})",
    """
    INSERT INTO daily_status_account_summary
    SELECT g.time_id, t.date, g.status, g.account_type, sum(g.txn_count), sum(g.total_amount),
           sum(g.duration_sum) / sum(g.duration_count)
    FROM mart_grain g JOIN calendar_view t USING (time_id)
    GROUP BY ALL
    """,
    "DELETE FROM hourly_volume WHERE time_id IN ({days}) OR time_id < $cutoff",
    """
    INSERT INTO hourly_volume
    SELECT time_id, hour_utc AT TIME ZONE 'UTC', customer_region, sum(txn_count),
           sum(total_amount)
    FROM mart_grain WHERE time_id >= $cutoff
    GROUP BY ALL
    """,
    "DELETE FROM data_freshness WHERE time_id IN ({days})",
    """
    INSERT INTO data_freshness
    SELECT g.time_id, t.date, sum(g.txn_count), max(g.newest_event_time),
           max(g.last_load_time), now()
    FROM mart_grain g JOIN calendar_view t USING (time_id)
    GROUP BY ALL
    """,
)

# First day of the hourly window: it ends on the newest day that has data.
CUTOFF_SQL = """
SELECT coalesce(CAST(strftime(max(date) - CAST($hourly_days - 1 AS INTEGER), '%Y%m%d')
                     AS INTEGER), 0)
FROM time_dimension
"""


def refresh_pending(
    con: duckdb.DuckDBPyConnection, hourly_days: int = DEFAULT_HOURLY_DAYS
) -> tuple[int, list[int]]:
    """Refresh every mart for every unsummarized batch (run inside one transaction).

    Returns the number of batches covered and the days refreshed.
    """
    pending = con.execute(PENDING_SQL).fetchall()
    if not pending:
        return 0, []
    days = sorted({int(d) for _, batch_days in pending for d in batch_days})
    if days:
        refresh_days(con, days, hourly_days)
    con.execute(
        "INSERT INTO summary_refresh SELECT unnest($ids), now()", {"ids": [b for b, _ in pending]}
    )
    return len(pending), days


def refresh_days(con: duckdb.DuckDBPyConnection, days: list[int], hourly_days: int) -> None:
    """Replace every mart's rows for `days` (time_id values) with a recomputation from the fact."""
    literal = ", ".join(str(int(d)) for d in days)
    row = con.execute(CUTOFF_SQL, {"hourly_days": hourly_days}).fetchone()
    cutoff = int(row[0]) if row else 0
    con.execute(GRAIN_SQL.format(days=literal))
    for sql in REPLACE_SQL:
        con.execute(sql.format(days=literal), {"cutoff": cutoff} if "$cutoff" in sql else None)
    con.execute("DROP TABLE mart_grain")
