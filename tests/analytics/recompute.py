"""Marts recomputed from the fact table, independently of the summarizer's SQL, and compared.

Each check returns the number of keys where the stored mart and the recomputation differ (a row
missing on either side, or any value off by more than a relative 1e-9); 0 means equal.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

FACTS = """
CREATE OR REPLACE TEMP TABLE recomputed_fact AS
SELECT f.*, CAST(strptime(CAST(f.time_id AS VARCHAR), '%Y%m%d') AS DATE) AS d,
       a.customer_region, a.account_type
FROM transaction_fact f
JOIN (SELECT account_id, min(customer_region) AS customer_region,
             min(account_type) AS account_type
      FROM account_dimension GROUP BY account_id) a USING (account_id)
"""
CLOSE = """
CREATE OR REPLACE TEMP MACRO close_enough(a, b) AS
    (a IS NULL AND b IS NULL) OR abs(a - b) <= 1e-9 * greatest(1, abs(a))
"""

CHECKS = {
    "transaction_daily_summary": """
        WITH r AS (SELECT d AS date, customer_region, count(*) AS n, sum(amount) AS amount,
                          avg(processing_duration) AS duration
                   FROM recomputed_fact GROUP BY ALL)
        SELECT count(*) FROM r FULL JOIN transaction_daily_summary s USING (date, customer_region)
        WHERE r.n IS DISTINCT FROM s.txn_count
           OR NOT close_enough(r.amount, s.total_amount)
           OR NOT close_enough(r.duration, s.avg_processing_duration)
           OR s.year IS DISTINCT FROM year(date) OR s.month IS DISTINCT FROM month(date)
           OR s.day IS DISTINCT FROM day(date)
    """,
    "daily_status_account_summary": """
        WITH r AS (SELECT d AS date, status, account_type, count(*) AS n, sum(amount) AS amount,
                          avg(processing_duration) AS duration
                   FROM recomputed_fact GROUP BY ALL)
        SELECT count(*) FROM r
        FULL JOIN daily_status_account_summary s USING (date, status, account_type)
        WHERE r.n IS DISTINCT FROM s.txn_count
           OR NOT close_enough(r.amount, s.total_amount)
           OR NOT close_enough(r.duration, s.avg_processing_duration)
           OR s.time_id IS DISTINCT FROM CAST(strftime(date, '%Y%m%d') AS INTEGER)
    """,
    "hourly_volume": """
        WITH r AS (SELECT to_timestamp(floor(epoch(event_time) / 3600) * 3600) AS hour,
                          customer_region, count(*) AS n, sum(amount) AS amount
                   FROM recomputed_fact
                   WHERE d >= (SELECT max(d) FROM recomputed_fact) - ($hourly_days - 1)
                   GROUP BY ALL)
        SELECT count(*) FROM r FULL JOIN hourly_volume s USING (hour, customer_region)
        WHERE r.n IS DISTINCT FROM s.txn_count OR NOT close_enough(r.amount, s.total_amount)
    """,
    "data_freshness": """
        WITH r AS (SELECT d AS date, count(*) AS n, max(event_time) AS newest,
                          max(load_timestamp) AS last_load
                   FROM recomputed_fact GROUP BY ALL)
        SELECT count(*) FROM r FULL JOIN data_freshness s USING (date)
        WHERE r.n IS DISTINCT FROM s.txn_count OR r.newest IS DISTINCT FROM s.newest_event_time
           OR r.last_load IS DISTINCT FROM s.last_load_time
    """,
    "calendar_view": """
        WITH r AS (SELECT DISTINCT time_id, d FROM recomputed_fact)
        SELECT count(*) FROM r FULL JOIN calendar_view s USING (time_id)
        WHERE s.date IS DISTINCT FROM r.d OR s.year IS DISTINCT FROM year(r.d)
           OR s.quarter IS DISTINCT FROM quarter(r.d) OR s.month IS DISTINCT FROM month(r.d)
           OR s.day IS DISTINCT FROM day(r.d) OR s.weekday IS DISTINCT FROM isodow(r.d)
           OR s.is_weekend IS DISTINCT FROM (dayname(r.d) IN ('Saturday', 'Sunday'))
    """,
}


def mart_mismatches(con: duckdb.DuckDBPyConnection, hourly_days: int = 7) -> dict[str, int]:
    con.execute(FACTS)
    con.execute(CLOSE)
    result = {}
    for name, sql in CHECKS.items():
        params = {"hourly_days": hourly_days} if "$hourly_days" in sql else None
        row = con.execute(sql, params).fetchone()
        result[name] = int(row[0]) if row else -1
    return result


SNAPSHOT_EQUALS = {
    "transaction_daily_summary": "date, customer_region, txn_count, total_amount",
    "daily_status_account_summary": "time_id, status, account_type, txn_count, total_amount",
    "hourly_volume": "hour, customer_region, txn_count, total_amount",
    "data_freshness": "time_id, txn_count, newest_event_time, last_load_time",
}


def snapshot_mismatches(con: duckdb.DuckDBPyConnection, snapshot: Path) -> dict[str, int]:
    """Rows that differ between the warehouse's marts on `con` and the snapshot file's copies."""
    con.execute(f"ATTACH '{snapshot}' AS snap_check (READ_ONLY)")
    try:
        result = {}
        for table, cols in SNAPSHOT_EQUALS.items():
            row = con.execute(
                f"""SELECT count(*) FROM (
                        (SELECT {cols} FROM lake.{table}
                         EXCEPT ALL SELECT {cols} FROM snap_check.{table})
                        UNION ALL
                        (SELECT {cols} FROM snap_check.{table}
                         EXCEPT ALL SELECT {cols} FROM lake.{table}))"""
            ).fetchone()
            result[table] = int(row[0]) if row else -1
        return result
    finally:
        con.execute("DETACH snap_check")
