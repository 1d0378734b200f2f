"""The summary refresh, as SQL on the warehouse: only the days of batches not yet summarized.

A refresh reads load_batch for batches missing from summary_refresh, so a manifest that never
arrived (loader killed between its commit and its announcement) is caught up by the next refresh,
and a manifest seen twice changes nothing. The dimensions are read through one row per key, so a
key inserted twice by two loader replicas at once cannot double a count.
"""

from __future__ import annotations

import duckdb

PENDING_SQL = """
SELECT batch_id, days FROM load_batch
WHERE batch_id NOT IN (SELECT batch_id FROM summary_refresh)
"""

DELETE_SQL = """
DELETE FROM transaction_daily_summary
WHERE CAST(year AS INTEGER) * 10000 + CAST(month AS INTEGER) * 100 + day
      IN (SELECT unnest($days))
"""

INSERT_SQL = """
INSERT INTO transaction_daily_summary
SELECT t.year, t.month, t.day, a.customer_region,
       count(*), sum(f.amount), avg(f.processing_duration)
FROM transaction_fact f
JOIN (SELECT time_id, any_value(year) AS year, any_value(month) AS month, any_value(day) AS day
      FROM time_dimension GROUP BY time_id) t USING (time_id)
JOIN (SELECT account_id, any_value(customer_region) AS customer_region
      FROM account_dimension GROUP BY account_id) a USING (account_id)
WHERE f.time_id IN (SELECT unnest($days))
GROUP BY ALL
"""


def refresh_pending(con: duckdb.DuckDBPyConnection) -> tuple[int, list[int]]:
    """Refresh the summary for every unsummarized batch (run inside one transaction).

    Returns the number of batches covered and the days refreshed.
    """
    pending = con.execute(PENDING_SQL).fetchall()
    if not pending:
        return 0, []
    days = sorted({d for _, batch_days in pending for d in batch_days})
    con.execute(DELETE_SQL, {"days": days})
    con.execute(INSERT_SQL, {"days": days})
    con.execute(
        "INSERT INTO summary_refresh SELECT unnest($ids), now()", {"ids": [b for b, _ in pending]}
    )
    return len(pending), days
