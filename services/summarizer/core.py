"""The mart refresh, as SQL on the warehouse: only the days of batches not yet summarized.

A refresh reads load_batch for batches missing from summary_refresh, so a manifest that never
arrived (loader killed between its commit and its announcement) is caught up by the next refresh,
and a manifest seen twice changes nothing. Every mart's rows for the days those batches touched
are replaced from the fact rows at mart grain (services/summarizer/grain.py: the grain kept in
`mart_grain` for those days, merged with the rows of the pending batches only), and the grain's
rows of those days with them.

Reading is the long part, so it runs in a read transaction (`prepare_refresh`), and only the
replacement runs in a writing one (`apply_refresh`): a SQLite catalog lets one writer in at a
time, and the loaders should not wait for the read. The replacement is applied only if every
batch it covers is still unsummarized; otherwise another summarizer refreshed from a newer
snapshot, and the next refresh starts over. Batches loaded between the two transactions stay
pending, so their days are refreshed again.

The dimensions are read through one row per key, so a key inserted twice by two loader replicas
at once cannot double a count.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa

from headrace.lake import bookkeeping
from services.summarizer.grain import read_grain

DEFAULT_HOURLY_DAYS = 7

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
    FROM refresh_grain g JOIN calendar_view t USING (time_id)
    GROUP BY ALL
    """,
    "DELETE FROM daily_status_account_summary WHERE time_id IN ({days})",
    """
    INSERT INTO daily_status_account_summary
    SELECT g.time_id, t.date, g.status, g.account_type, sum(g.txn_count), sum(g.total_amount),
           sum(g.duration_sum) / sum(g.duration_count)
    FROM refresh_grain g JOIN calendar_view t USING (time_id)
    GROUP BY ALL
    """,
    "DELETE FROM hourly_volume WHERE time_id IN ({days}) OR time_id < $cutoff",
    """
    INSERT INTO hourly_volume
    SELECT time_id, hour_utc AT TIME ZONE 'UTC', customer_region, sum(txn_count),
           sum(total_amount)
    FROM refresh_grain WHERE time_id >= $cutoff
    GROUP BY ALL
    """,
    "DELETE FROM data_freshness WHERE time_id IN ({days})",
    """
    INSERT INTO data_freshness
    SELECT g.time_id, t.date, sum(g.txn_count), max(g.newest_event_time),
           max(g.last_load_time), now()
    FROM refresh_grain g JOIN calendar_view t USING (time_id)
    GROUP BY ALL
    """,
    "DELETE FROM mart_grain WHERE time_id IN ({days})",
    "INSERT INTO mart_grain BY NAME SELECT * FROM refresh_grain",
)

# First day of the hourly window: it ends on the newest day that has data.
CUTOFF_SQL = """
SELECT coalesce(CAST(strftime(max(date) - CAST($hourly_days - 1 AS INTEGER), '%Y%m%d')
                     AS INTEGER), 0)
FROM time_dimension
"""


@dataclass(frozen=True)
class Refresh:
    """What a refresh read: the batches it covers, their days, and the fact rows at mart grain."""

    batch_ids: list[str]
    days: list[int]
    cutoff: int
    grain: pa.Table | None  # None when the batches touched no day


def prepare_refresh(
    con: duckdb.DuckDBPyConnection, hourly_days: int = DEFAULT_HOURLY_DAYS
) -> Refresh | None:
    """Read what the unsummarized batches need (in a read transaction); None if none are."""
    pending = bookkeeping.unsummarized(con)
    if not pending:
        return None
    days = sorted({int(d) for _, batch_days in pending for d in batch_days})
    row = con.execute(CUTOFF_SQL, {"hourly_days": hourly_days}).fetchone()
    cutoff = int(row[0]) if row else 0
    batch_ids = [b for b, _ in pending]
    return Refresh(batch_ids, days, cutoff, read_grain(con, batch_ids, days))


def apply_refresh(con: duckdb.DuckDBPyConnection, refresh: Refresh) -> bool:
    """Replace the marts' rows of the refresh's days (in a writing transaction).

    False, writing nothing, if one of its batches has been summarized since it was prepared.
    """
    pending = {b for b, _ in bookkeeping.unsummarized(con)}
    if not pending.issuperset(refresh.batch_ids):
        return False
    if refresh.grain is not None:
        literal = ", ".join(str(d) for d in refresh.days)
        con.register("refresh_grain", refresh.grain)
        try:
            for sql in REPLACE_SQL:
                params = {"cutoff": refresh.cutoff} if "$cutoff" in sql else None
                con.execute(sql.format(days=literal), params)
        finally:
            con.unregister("refresh_grain")
    con.execute(
        "INSERT INTO summary_refresh SELECT unnest($ids), now()", {"ids": refresh.batch_ids}
    )
    return True


def refresh_pending(
    con: duckdb.DuckDBPyConnection, hourly_days: int = DEFAULT_HOURLY_DAYS
) -> tuple[int, list[int]]:
    """Refresh every mart for every unsummarized batch, in `con`'s one transaction.

    Returns the number of batches covered and the days refreshed.
    """
    refresh = prepare_refresh(con, hourly_days)
    if refresh is None:
        return 0, []
    apply_refresh(con, refresh)
    return len(refresh.batch_ids), refresh.days
