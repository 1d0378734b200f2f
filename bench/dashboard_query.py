"""Dashboard query on the daily summary at 10M fact rows: must take <= 50 ms.

Builds a temporary DuckLake (SQLite catalog, local bucket) with synthetic fact rows written by SQL
(range(), see headrace/dev/sample_warehouse.py), refreshes the marts as the summarizer does,
publishes the BI snapshot, then times the dashboard's daily-summary query
(services/summarizer/dashboard.py DAILY_SQL) on the snapshot the dashboard reads, and on the
warehouse table itself. The baseline, measured in the same run, is the same answer computed from the
fact table by the star join the marts replace; the ratio says how much the marts save, whatever the
machine.

    .venv/bin/python bench/dashboard_query.py [--rows 10000000] [--days 90]

Exit status 1 if the dashboard query takes more than the budget.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from headrace.dev import sample_warehouse
from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings
from services.summarizer import snapshot
from services.summarizer.core import refresh_pending
from services.summarizer.dashboard import DAILY_SQL

BUDGET_MS = 50.0
BASELINE_SQL = """
SELECT strftime(t.date, '%Y-%m-%d') AS day, a.customer_region, count(*) AS txn_count,
       sum(f.amount) AS total_amount
FROM transaction_fact f
JOIN time_dimension t USING (time_id)
JOIN account_dimension a USING (account_id)
WHERE t.date > (SELECT max(date) FROM time_dimension) - CAST($days AS INTEGER)
GROUP BY ALL ORDER BY ALL
"""


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def median_ms(work: Callable[[], object], runs: int) -> float:
    work()  # warm: first run pays for opening files and planning
    return statistics.median(timed(work) for _ in range(runs)) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--shown-days", type=int, default=60, help="days the chart shows")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="headrace-bench-") as tmp:
        home = Path(tmp)
        common = CommonSettings(
            bucket_url=str(home / "bucket"), catalog_url=str(home / "catalog.sqlite")
        )
        con = warehouse.connect(common)
        warehouse.migrate(con)
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        batch = sample_warehouse.Batch(
            "bench", args.rows, 1, end - timedelta(days=args.days), end, args.accounts
        )
        build = timed(
            lambda: warehouse.in_transaction(con, lambda: sample_warehouse.load(con, batch))
        )
        print(f"built {args.rows:,} fact rows over {args.days} days in {build:.1f} s")
        refresh = timed(lambda: warehouse.in_transaction(con, lambda: refresh_pending(con)))
        print(f"refreshed the marts for {args.days} days in {refresh:.2f} s")
        target = home / "marts.duckdb"
        publish = timed(lambda: snapshot.write(con, target, {}, snapshot.fact_files(con)))
        print(f"wrote the BI snapshot in {publish:.2f} s ({target.stat().st_size / 1e6:.1f} MB)")

        params = {"days": args.shown_days}
        reader = duckdb.connect(str(target), read_only=True)
        on_snapshot = median_ms(lambda: reader.execute(DAILY_SQL, params).fetchall(), 50)
        on_lake = median_ms(lambda: con.execute(DAILY_SQL, params).fetchall(), 20)
        baseline = median_ms(lambda: con.execute(BASELINE_SQL, params).fetchall(), 5)
        same = reader.execute(DAILY_SQL, params).fetchall()
        star = con.execute(BASELINE_SQL, params).fetchall()
        assert [r[:3] for r in same] == [r[:3] for r in star], "mart and star join disagree"
        reader.close()
        con.close()

    print(f"dashboard query, BI snapshot (what /dashboard reads): {on_snapshot:8.2f} ms")
    print(f"dashboard query, DuckLake table:                      {on_lake:8.2f} ms")
    print(f"baseline: same answer by star join over the fact:     {baseline:8.2f} ms")
    print(
        f"ratio snapshot / baseline: {on_snapshot / baseline:.4f}; "
        f"lake / baseline: {on_lake / baseline:.4f}"
    )
    worst = max(on_snapshot, on_lake)
    verdict = "within" if worst <= BUDGET_MS else "OVER"
    print(f"{verdict} the {BUDGET_MS:.0f} ms budget (worst {worst:.2f} ms)")
    return 0 if worst <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
