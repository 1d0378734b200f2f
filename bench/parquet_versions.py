"""Parquet format version 1 against 2 on the fact table's rows: size, write time, star-join scan.

    .venv/bin/python -m bench.parquet_versions [--rows 10000000] [--root DIR]

The decision it measured: schemas/warehouse/006_parquet_v2.sql. Synthetic fact rows
(headrace/dev/sample_warehouse.py, 365 days) are written partitioned by day, as DuckLake writes the
fact, once per version, with the lake's compression (snappy); then the columns the star join of
`python -m bench` reads are scanned with its status filter. Each time is the median of three
runs after a warm-up, all in one process (ratios, not absolute times, are the result).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import duckdb

from bench.queries import ONE_FILE_PER_DAY, median_ms
from headrace.dev import sample_warehouse

SCAN_SQL = """
SELECT count(*), sum(amount), avg(processing_duration), sum(account_id), sum(time_id)
FROM read_parquet('{files}') WHERE status IN ('COMPLETED', 'PENDING')
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--root", type=Path, default=None, help="scratch folder (default: temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.root) as scratch:
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        con.execute(ONE_FILE_PER_DAY)
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        batch = sample_warehouse.Batch("v", args.rows, 1, end - timedelta(days=365), end, 100_000)
        con.execute(*sample_warehouse.fact_statement(batch))
        results = {}
        for version in (1, 2):
            folder = Path(scratch) / f"v{version}"
            started = time.perf_counter()
            con.execute(
                f"COPY synthetic_fact TO '{folder}' (FORMAT parquet, COMPRESSION snappy, "
                f"PARQUET_VERSION V{version}, PARTITION_BY (time_id))"
            )
            write_s = time.perf_counter() - started
            size = sum(f.stat().st_size for f in folder.rglob("*.parquet"))
            query = SCAN_SQL.format(files=f"{folder}/*/*.parquet")
            scan_ms = median_ms(partial(_fetch, con, query), 3)
            results[version] = (size, write_s, scan_ms)
            print(
                f"version {version}: {size / 1e6:,.0f} MB, written in {write_s:.1f} s, "
                f"star-join scan {scan_ms:,.0f} ms"
            )
        (s1, w1, q1), (s2, w2, q2) = results[1], results[2]
        print(f"version 2 / version 1: size {s2 / s1:.2f}, write {w2 / w1:.2f}, scan {q2 / q1:.2f}")


def _fetch(con: duckdb.DuckDBPyConnection, query: str) -> object:
    return con.execute(query).fetchall()


if __name__ == "__main__":
    main()
