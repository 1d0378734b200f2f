"""Figure f: query latency at growing fact-table sizes (no broker: the warehouse alone).

Synthetic fact rows (headrace/dev/sample_warehouse.py, written by SQL) are appended in batches of at
most 10M rows, one warehouse transaction each, as loader batches would be, then compacted
(ducklake_merge_adjacent_files, the maintenance a warehouse in service gets). At each size:

- the analysts' star join (transaction_fact x time_dimension x account_dimension, filtered on
  status, account type and date, aggregated by year and region) on the DuckLake tables; baseline:
  the same query over the same Parquet files read directly (read_parquet, no catalog), which is
  what the lake adds to;
- the dashboard's daily query (services/summarizer/dashboard.py DAILY_SQL) on the BI snapshot the
  summarizer publishes, after refreshing the marts as it does; baseline: the same answer computed
  by a star join over the fact table (bench/dashboard_query.py), which is what the marts save.
  Target: 50 ms, the time a dashboard panel may take to answer;
- the same dashboard query on the DuckLake summary table.

Each latency is the median of several runs after one warm-up run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from bench.dashboard_query import BASELINE_SQL
from bench.report import Figure
from headrace.dev import sample_warehouse
from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings
from services.summarizer import snapshot
from services.summarizer.core import refresh_pending
from services.summarizer.dashboard import DAILY_SQL

CHUNK_ROWS = 10_000_000
DASHBOARD_BUDGET_MS = 50.0
STAR_JOIN_BUDGET_MS = 2000.0  # the target star join, at 100M fact rows
STAR_JOIN_BUDGET_ROWS = 100_000_000
QUERY_MEMORY = "6GB"
# A 10M-row write spreads over every day partition (365): past DuckDB's default of 100 open
# files it closes and reopens them, ~15 files per day per append, and the catalog commit costs
# ~20 s per 10M rows for them (1.2 s with one file per day).
ONE_FILE_PER_DAY = "SET partitioned_write_max_open_files = 1000"
SHOWN_DAYS = 60
STAR_JOIN_SQL = """
SELECT t.year, a.customer_region, count(*) AS txns, sum(f.amount) AS amount,
       avg(f.processing_duration) AS avg_duration
FROM {fact} f
JOIN time_dimension t USING (time_id)
JOIN account_dimension a USING (account_id)
WHERE f.status IN ('COMPLETED', 'PENDING') AND a.account_type <> 'BUSINESS'
  AND t.date >= CAST($since AS DATE)
GROUP BY ALL ORDER BY ALL
"""


def median_ms(work: Callable[[], object], runs: int) -> float:
    work()  # warm: the first run pays for opening files and planning
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _label(rows: int) -> str:
    return f"{rows / 1e6:g}M" if rows >= 1_000_000 else f"{rows / 1e3:g}k"


def run(home: Path, sizes: tuple[int, ...], days: int, accounts: int) -> list[Figure]:
    common = CommonSettings(
        bucket_url=str(home / "bucket"), catalog_url=str(home / "warehouse" / "catalog.sqlite")
    )
    con = warehouse.connect(common)
    # A service's DuckDB gets half its small memory budget; an analyst's session building and
    # scanning 100M rows gets what a workstation would give it.
    con.execute(f"SET memory_limit = '{QUERY_MEMORY}'")
    con.execute("SET enable_progress_bar = false")
    con.execute(ONE_FILE_PER_DAY)
    warehouse.migrate(con)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    since = (start + timedelta(days=days // 4)).date()
    loaded, figures = 0, list[Figure]()
    for size in sorted(sizes):
        build_started = time.monotonic()
        while loaded < size:
            rows = min(CHUNK_ROWS, size - loaded)
            batch = sample_warehouse.Batch(
                f"bench-{loaded}", rows, loaded + 1, start, end, accounts, seed=loaded
            )
            _append(con, batch)
            loaded += rows
        # Each append writes a file per day partition; a warehouse in service is compacted, so
        # the figures are taken after it.
        compact_started = time.monotonic()
        con.execute(f"CALL ducklake_merge_adjacent_files('{warehouse.LAKE}')")
        build = (compact_started - build_started, time.monotonic() - compact_started)
        figures += _measure(con, home, size, since, build)
    con.close()
    return figures


def _append(con: duckdb.DuckDBPyConnection, batch: sample_warehouse.Batch) -> None:
    warehouse.in_transaction(con, lambda: sample_warehouse.load(con, batch))


def _measure(
    con: duckdb.DuckDBPyConnection, home: Path, rows: int, since: object, build: tuple[float, float]
) -> list[Figure]:
    size = _label(rows)
    files = snapshot.fact_files(con)
    direct = f"read_parquet({files!r})"
    star = median_ms(
        lambda: con.execute(
            STAR_JOIN_SQL.format(fact="transaction_fact"), {"since": since}
        ).fetchall(),
        5,
    )
    star_direct = median_ms(
        lambda: con.execute(STAR_JOIN_SQL.format(fact=direct), {"since": since}).fetchall(), 5
    )
    refresh_started = time.monotonic()
    warehouse.in_transaction(con, lambda: refresh_pending(con))
    target = home / f"marts-{rows}.duckdb"
    snapshot.write(con, target, {}, files)
    refresh_s = time.monotonic() - refresh_started
    params = {"days": SHOWN_DAYS}
    reader = duckdb.connect(str(target), read_only=True)
    on_snapshot = median_ms(lambda: reader.execute(DAILY_SQL, params).fetchall(), 50)
    reader.close()
    on_lake = median_ms(lambda: con.execute(DAILY_SQL, params).fetchall(), 20)
    by_star_join = median_ms(lambda: con.execute(BASELINE_SQL, params).fetchall(), 5)
    target.unlink()
    notes = (
        f"{rows:,} fact rows in {len(files)} files; appended in {build[0]:.0f} s, "
        f"compacted in {build[1]:.0f} s"
    )
    return [
        Figure(
            key=f"query.star_join.{size}",
            label=f"star join by year, region ({size} rows)",
            unit="ms",
            value=star,
            baseline=star_direct,
            baseline_label="same files, no catalog",
            goal="value_at_most" if rows >= STAR_JOIN_BUDGET_ROWS else "none",
            target=STAR_JOIN_BUDGET_MS if rows >= STAR_JOIN_BUDGET_ROWS else None,
            notes=notes,
        ),
        Figure(
            key=f"query.dashboard.{size}",
            label=f"dashboard daily query, BI snapshot ({size} rows)",
            unit="ms",
            value=on_snapshot,
            baseline=by_star_join,
            baseline_label="same answer by star join",
            goal="value_at_most",
            target=DASHBOARD_BUDGET_MS,
            notes=f"marts refreshed and snapshot written in {refresh_s:.1f} s",
        ),
        Figure(
            key=f"query.dashboard_lake.{size}",
            label=f"dashboard daily query, DuckLake ({size} rows)",
            unit="ms",
            value=on_lake,
            baseline=by_star_join,
            baseline_label="same answer by star join",
            goal="value_at_most",
            target=DASHBOARD_BUDGET_MS,
        ),
    ]
