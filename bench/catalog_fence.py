"""Two writers racing on the same partitions of a PostgreSQL catalog: which fence keeps them apart.

    .venv/bin/python -m bench.catalog_fence [--batches 30] [--rows 1000] [--root DIR]

The decision it measured: headrace/lake/partition_locks.py. A local PostgreSQL (headrace's infra
code, Debian's package) holds one DuckLake catalog per option. Two writer processes each handle
`--batches` batches, the loader's way: a batch takes two of three partitions, reads where the
ledger says each one stands (as a loader does on assignment, before its transaction: so both
writers may hold the same offsets, as a paused loader and its successor do), then in one
transaction re-reads the ledger, drops the offsets it covers (the loader's check), appends the
rest as Parquet fact rows and appends ledger rows. Options:

- none: nothing more;
- advisory: a PostgreSQL advisory lock per partition, from before BEGIN to after COMMIT;
- fence_row: the transaction also UPDATEs one row per partition of a DuckLake fence table, so
  two transactions on a partition conflict and one is redone;
- ducklake: DuckLake's own conflict detection, nothing added (the same as none, measured apart
  to check that DuckLake does not refuse the second commit by itself).

Per option: batches/s over both writers, commit latency (from reading the position to COMMIT,
lock waits and redos included) p50/p95, transactions redone on a conflict, and duplicates: fact
rows whose (partition, offset) is there more than once.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import duckdb
import pyarrow as pa

from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.ports import free_port_block
from headrace.dev.infra.postgres_server import PostgresServer
from headrace.lake import warehouse
from headrace.lake.partition_locks import PartitionLocks, partition_key
from headrace.runtime.settings import CommonSettings

OPTIONS = ("none", "advisory", "fence_row", "ducklake")
PARTITIONS = 3
SETUP_SQL = (
    'CREATE TABLE fact (partition INTEGER, "offset" BIGINT, payload VARCHAR)',
    "CREATE TABLE ledger (partition INTEGER, next_offset BIGINT)",
    "CREATE TABLE fence (partition INTEGER, n BIGINT)",
    f"INSERT INTO fence SELECT range, 0 FROM range({PARTITIONS})",
)
INLINE_SQL = (
    "CALL lake.set_option('data_inlining_row_limit', 1000, table_name => 'ledger')",
    "CALL lake.set_option('data_inlining_row_limit', 1000, table_name => 'fence')",
)
LEDGER_SQL = "SELECT partition, max(next_offset) FROM ledger GROUP BY partition"


@dataclass
class WriterResult:
    latencies: list[float]
    redone: int


@dataclass
class Outcome:
    option: str
    batches_per_second: float
    p50: float
    p95: float
    redone: int
    transactions: int
    duplicates: int


def _ledger(con: duckdb.DuckDBPyConnection) -> dict[int, int]:
    return {int(p): int(o) for p, o in con.execute(LEDGER_SQL).fetchall()}


def _land(con: duckdb.DuckDBPyConnection, option: str, held: dict[int, int], rows: int) -> None:
    """The transaction's writes: what the ledger does not cover yet, and the ledger rows."""
    ledger = _ledger(con)
    parts: list[int] = []
    offsets: list[int] = []
    for p, first in held.items():
        start = max(first, ledger.get(p, 0))
        parts += [p] * (first + rows - start)
        offsets += range(start, first + rows)
    if option == "fence_row":
        con.execute(f"UPDATE fence SET n = n + 1 WHERE partition IN ({', '.join(map(str, held))})")
    if not offsets:
        return
    batch = pa.table({"partition": pa.array(parts, pa.int32()), "offset": offsets})
    con.register("batch", batch)
    con.execute("INSERT INTO fact SELECT partition, \"offset\", repeat('x', 200) FROM batch")
    con.unregister("batch")
    for p, first in held.items():
        if first + rows > ledger.get(p, 0):
            con.execute("INSERT INTO ledger VALUES (?, ?)", [p, first + rows])


def writer(option: str, common: CommonSettings, batches: int, rows: int, seed: int) -> WriterResult:
    rng = random.Random(seed)
    redone = [0]
    session = warehouse.Session(common, on_retry=lambda: redone.__setitem__(0, redone[0] + 1))
    locks = PartitionLocks(common.catalog_url.removeprefix("postgres:"))
    latencies = []
    for _ in range(batches):
        parts = sorted(rng.sample(range(PARTITIONS), 2))
        started = time.perf_counter()
        # Where each partition stands when the batch is consumed, read outside any fence.
        stands = session.read(_ledger)
        held = {p: stands.get(p, 0) for p in parts}
        fenced = option == "advisory"
        keys = [partition_key("bench", "validated", p) for p in parts] if fenced else []
        with locks.held(keys):
            session.read(partial(_land, option=option, held=held, rows=rows))
        latencies.append(time.perf_counter() - started)
    locks.close()
    return WriterResult(latencies, redone[0])


def _writer_entry(
    option: str,
    common: CommonSettings,
    batches: int,
    rows: int,
    seed: int,
    out: multiprocessing.Queue[WriterResult],
) -> None:
    out.put(writer(option, common, batches, rows, seed))


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(server: PostgresServer, root: Path, option: str, batches: int, rows: int) -> Outcome:
    url = server.create_database(f"fence_{option}")
    common = CommonSettings(catalog_url=url, bucket_url=str(root / option), duckdb_threads=1)
    setup = warehouse.connect(common)
    for sql in (*SETUP_SQL, *INLINE_SQL):
        setup.execute(sql)
    spawn = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[WriterResult] = spawn.Queue()
    started = time.perf_counter()
    procs = [
        spawn.Process(target=_writer_entry, args=(option, common, batches, rows, seed, results))
        for seed in (1, 2)
    ]
    for proc in procs:
        proc.start()
    done = [results.get() for _ in procs]
    seconds = time.perf_counter() - started
    for proc in procs:
        proc.join()
    row = setup.execute(
        'SELECT count(*) - count(DISTINCT (partition, "offset")) FROM fact'
    ).fetchone()
    setup.close()
    latencies = [t for r in done for t in r.latencies]
    return Outcome(
        option,
        len(latencies) / seconds,
        _percentile(latencies, 0.5),
        _percentile(latencies, 0.95),
        sum(r.redone for r in done),
        len(latencies),
        int(row[0]) if row else -1,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=30, help="per writer")
    parser.add_argument("--rows", type=int, default=1000, help="per partition and batch")
    parser.add_argument("--root", type=Path, default=None, help="scratch folder (default: temp)")
    parser.add_argument("--options", default=",".join(OPTIONS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.root, prefix="catalog-fence-") as scratch:
        root = Path(scratch)
        root.chmod(0o755)  # as root, PostgreSQL runs as nobody, who must reach its folder
        infra = InfraSettings(state_dir=root / "infra", postgres_port=free_port_block(1))
        server = PostgresServer(infra)
        server.start()
        os.environ["PGPASSWORD"] = server.password
        try:
            print(
                f"{'option':<10} {'batches/s':>9} {'p50 s':>6} {'p95 s':>6} "
                f"{'redone':>11} {'duplicates':>10}"
            )
            for option in args.options.split(","):
                o = measure(server, root, option, args.batches, args.rows)
                print(
                    f"{o.option:<10} {o.batches_per_second:>9.1f} {o.p50:>6.2f} {o.p95:>6.2f} "
                    f"{o.redone:>5}/{o.transactions:<5} {o.duplicates:>10}",
                    flush=True,
                )
        finally:
            server.stop()


if __name__ == "__main__":
    main()
