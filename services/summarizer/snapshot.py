"""The BI snapshot: a plain DuckDB file with the marts and dimensions, replaced atomically.

BI tools that only open "a DuckDB file" cannot attach a DuckLake, and DuckDB's file lock would
keep them out of any file a writer holds open. So the summarizer builds the whole snapshot in a
temporary file beside the target (ATTACH, CREATE TABLE ... AS SELECT from the warehouse, CHECKPOINT,
DETACH), fsyncs it, and renames it over the published name. The published file is never opened
for writing: a reader that has it open keeps reading the old version, the next open gets the new
one, and no reader ever sees a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa

ALIAS = "bi_snapshot"
# Readable by DuckDB 1.0 and later (and so by older drivers inside BI tools).
STORAGE_VERSION = "v1.0.0"

# Snapshot table -> the warehouse query that fills it (run against the lake, USE lake).
TABLES: dict[str, str] = {
    "transaction_daily_summary": """
        SELECT date, year, month, day, customer_region, txn_count, total_amount,
               avg_processing_duration
        FROM transaction_daily_summary ORDER BY date, customer_region""",
    "daily_status_account_summary": """
        SELECT * FROM daily_status_account_summary ORDER BY time_id, status, account_type""",
    "hourly_volume": "SELECT * FROM hourly_volume ORDER BY hour, customer_region",
    "data_freshness": "SELECT * FROM data_freshness ORDER BY time_id",
    "time_dimension": "SELECT * FROM calendar_view ORDER BY time_id",
    "account_dimension": "SELECT * FROM account_view ORDER BY account_id",
    "snapshot_info": """
        SELECT now() AS written_at,
               (SELECT id FROM lake.current_snapshot()) AS warehouse_snapshot_id,
               CAST((SELECT sum(txn_count) FROM data_freshness) AS BIGINT) AS fact_rows,
               (SELECT max(newest_event_time) FROM data_freshness) AS newest_event_time,
               (SELECT max(last_load_time) FROM data_freshness) AS last_load_time""",
}

# Detail rows straight from the clean zone's Parquet files, for clients that can read them.
DETAIL_VIEW = """
CREATE VIEW {alias}.transaction_detail AS
SELECT f.transaction_id, f.event_time, t.date AS event_date, t.year, t.quarter, t.month,
       t.month_name, t.day, t.weekday, t.day_name, t.is_weekend, f.amount,
       f.processing_duration, f.status, f.source_system, a.masked_account_number AS account_number,
       a.account_type, a.customer_region, f.load_timestamp, f.batch_id AS load_batch_id
FROM read_parquet({files}, hive_partitioning = false) f
JOIN time_dimension t USING (time_id)
JOIN account_dimension a USING (account_id)
"""

FACT_FILES_SQL = "SELECT data_file FROM ducklake_list_files('lake', 'transaction_fact') ORDER BY 1"


def fact_files(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The fact table's current data files (the loader never deletes facts: no delete files)."""
    return [r[0] for r in con.execute(FACT_FILES_SQL).fetchall()]


def write(
    con: duckdb.DuckDBPyConnection,
    target: Path,
    extras: dict[str, pa.Table],
    detail_files: list[str] | None,
) -> None:
    """Build the snapshot from the warehouse on `con` plus `extras`, then publish it at `target`.

    `detail_files` are the clean-zone Parquet files behind the transaction_detail view; None or
    an empty list leaves the view out (a gs:// zone, or no data yet).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    con.execute(f"ATTACH {_quote(str(tmp))} AS {ALIAS} (STORAGE_VERSION '{STORAGE_VERSION}')")
    try:
        con.execute("BEGIN")
        for name, select in TABLES.items():
            con.execute(f"CREATE TABLE {ALIAS}.{name} AS {select}")
        for name, table in extras.items():
            con.register("snapshot_extra", table)
            con.execute(f"CREATE TABLE {ALIAS}.{name} AS SELECT * FROM snapshot_extra")
            con.unregister("snapshot_extra")
        if detail_files:
            files = "[" + ", ".join(_quote(f) for f in detail_files) + "]"
            con.execute(DETAIL_VIEW.format(alias=ALIAS, files=files))
        con.execute("COMMIT")
        con.execute(f"CHECKPOINT {ALIAS}")
        con.execute(f"DETACH {ALIAS}")
        _fsync(tmp)
        os.replace(tmp, target)
        _fsync(target.parent)
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        with contextlib.suppress(duckdb.Error):
            con.execute(f"DETACH {ALIAS}")
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
