"""`headrace sql` as analysts run it: a query, a .sql file, the shell; table, CSV, JSON, Parquet."""

from __future__ import annotations

import csv
import io
import subprocess
from pathlib import Path

import duckdb
import orjson

from tests.analytics.conftest import VENV_BIN, Lake

STAR_JOIN = """
SELECT t.year, a.customer_region, count(*) AS txns, sum(f.amount) AS amount
FROM transaction_fact f
JOIN time_dimension t USING (time_id)
JOIN account_dimension a USING (account_id)
GROUP BY ALL ORDER BY ALL
"""


def headrace_sql(
    lake: Lake, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "headrace"), "sql", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=lake.env,
        timeout=120,
    )


def test_star_join_by_year_and_region_exports_as_parquet(lake: Lake, tmp_path: Path) -> None:
    lake.load("b1", 30_000, first_id=1, first_day=80, days=40)  # crosses into the next year
    lake.refresh()
    out = tmp_path / "by_year_region.parquet"

    done = headrace_sql(lake, STAR_JOIN, "--format", "parquet", "--output", str(out))

    assert done.returncode == 0, done.stderr
    exported = duckdb.sql(f"SELECT * FROM '{out}' ORDER BY ALL").fetchall()
    from_marts = lake.con.execute(
        "SELECT year, customer_region, sum(txn_count), sum(total_amount) "
        "FROM transaction_daily_summary GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert [r[:3] for r in exported] == [r[:3] for r in from_marts]
    assert {r[0] for r in exported} == {2026, 2027}
    assert sum(r[2] for r in exported) == 30_000
    for got, want in zip(exported, from_marts, strict=True):
        assert abs(got[3] - want[3]) < 1e-6 * want[3]


def test_sql_file_json_csv_and_read_only(lake: Lake, tmp_path: Path) -> None:
    lake.load("b1", 1_000, first_id=1, first_day=0, days=3)
    lake.refresh()
    script = tmp_path / "regions.sql"
    script.write_text(
        "CREATE TEMP TABLE picked AS SELECT * FROM transaction_view WHERE amount > 100;\n"
        "SELECT customer_region, count(*) AS n FROM picked GROUP BY ALL ORDER BY 1;\n"
    )
    as_json = headrace_sql(lake, str(script), "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    rows = orjson.loads(as_json.stdout)
    want = lake.con.execute(
        "SELECT customer_region, count(*) FROM transaction_view WHERE amount > 100 "
        "GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert [(r["customer_region"], r["n"]) for r in rows] == want

    csv_file = tmp_path / "daily.csv"
    as_csv = headrace_sql(
        lake, "SELECT * FROM daily_status_account_summary", "-f", "csv", "-o", str(csv_file)
    )
    assert as_csv.returncode == 0, as_csv.stderr
    records = list(csv.DictReader(io.StringIO(csv_file.read_text())))
    assert sum(int(r["txn_count"]) for r in records) == 1_000

    refused = headrace_sql(lake, "DELETE FROM transaction_fact")
    assert refused.returncode == 2 and "read-only" in refused.stderr


def test_interactive_shell_reads_statements_until_end_of_input(lake: Lake) -> None:
    lake.load("b1", 700, first_id=1, first_day=0, days=2)
    lake.refresh()
    session = "\n".join(
        [
            ".mode csv",
            "SELECT count(*) AS n",
            "FROM transaction_view;",
            "INSERT INTO transaction_fact SELECT * FROM transaction_fact;",
            ".tables",
            "SELECT sum(txn_count) AS summed FROM transaction_daily_summary;",
        ]
    )
    done = headrace_sql(lake, stdin=session + "\n")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["n", "700"]
    assert "read-only" in done.stderr  # the INSERT failed, the shell went on
    assert "hourly_volume,BASE TABLE" in lines and "transaction_view,VIEW" in lines
    assert lines[-2:] == ["summed", "700"]


# The design's own queries, as analysts wrote them against it: they must run unmodified.
DESIGN_FLATTENED_VIEW = """
SELECT f.transaction_id, f.amount, f.processing_duration, f.status, f.load_timestamp,
       t.year, t.month, t.day, t.weekday,
       a.masked_account_number, a.account_type, a.customer_region
FROM transaction_fact f
JOIN time_dimension t ON f.time_id = t.time_id
JOIN account_dimension a ON f.account_id = a.account_id
"""
DESIGN_VIEW_COLUMNS = (
    "transaction_id, amount, processing_duration, status, load_timestamp, year, month, day, "
    "weekday, masked_account_number, account_type, customer_region"
)
DESIGN_SUMMARY = """
SELECT year, month, day, customer_region, txn_count, total_amount, avg_processing_duration
FROM transaction_daily_summary
ORDER BY year, month, day, customer_region
"""
DESIGN_TABLES = {
    "transaction_fact": "transaction_id, amount, processing_duration, status, source_system, "
    "load_timestamp, time_id, account_id",
    "time_dimension": "time_id, year, quarter, month, day, weekday, is_weekend",
    "account_dimension": "account_id, masked_account_number, account_type, customer_region",
}


def test_the_designs_queries_run_unmodified(lake: Lake) -> None:
    lake.load("b1", 2_000, first_id=1, first_day=0, days=5)
    lake.refresh()
    flattened = lake.con.execute(DESIGN_FLATTENED_VIEW).fetchall()
    view = lake.con.execute(f"SELECT {DESIGN_VIEW_COLUMNS} FROM transaction_view").fetchall()
    assert len(flattened) == 2_000 and sorted(view) == sorted(flattened)
    assert all(r[9].startswith("********") and len(r[9]) == 12 for r in view)
    summary = lake.con.execute(DESIGN_SUMMARY).fetchall()
    assert sum(r[4] for r in summary) == 2_000
    for table, columns in DESIGN_TABLES.items():
        lake.con.execute(f"SELECT {columns} FROM {table} LIMIT 1").fetchall()
    done = headrace_sql(lake, "SELECT count(DISTINCT masked_account_number) FROM transaction_view")
    assert done.returncode == 0, done.stderr
