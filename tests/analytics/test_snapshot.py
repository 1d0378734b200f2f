"""The BI snapshot: a plain DuckDB file equal to the warehouse's marts, replaced atomically."""

from __future__ import annotations

import shutil
import subprocess
import threading
from datetime import date
from pathlib import Path
from typing import cast

import duckdb
import pytest
import sqlalchemy as sa
from confluent_kafka.admin import AdminClient

from headrace.audit import reconciliation
from headrace.audit.reconciliation import Reconciliation
from headrace.kafka import offsets
from headrace.lake.bucket import Bucket
from headrace.lake.error_zone import ErrorZoneTally
from services.summarizer import snapshot
from services.summarizer.publisher import Publisher, error_daily_reason
from tests.analytics.conftest import VENV_BIN, Lake, reconciliation_row
from tests.analytics.recompute import snapshot_mismatches

DUCKDB_CLI = VENV_BIN / "duckdb"
STAR_JOIN = """
SELECT t.year, a.customer_region, count(*) AS txns, round(sum(f.amount), 2) AS amount
FROM transaction_fact f
JOIN time_dimension t USING (time_id) JOIN account_dimension a USING (account_id)
GROUP BY ALL ORDER BY ALL
"""


def write_snapshot(lake: Lake, target: Path) -> None:
    files = snapshot.fact_files(lake.con)
    snapshot.write(lake.con, target, {"reconciliation": reconciliation_row(None, 0, 0)}, files)


def cli(db: Path, sql: str) -> str:
    assert DUCKDB_CLI.exists(), "the DuckDB CLI is a dev dependency: pip install duckdb-cli==1.5.5"
    done = subprocess.run(
        [str(DUCKDB_CLI), "-readonly", "-csv", "-noheader", str(db), "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_snapshot_equals_the_warehouse_and_opens_in_the_duckdb_cli(lake: Lake) -> None:
    lake.load("b1", 10_000, first_id=1, first_day=0, days=15)
    lake.refresh()
    target = lake.home / "marts.duckdb"
    write_snapshot(lake, target)

    assert set(snapshot_mismatches(lake.con, target).values()) == {0}
    assert not [p for p in target.parent.iterdir() if p.name.endswith((".tmp", ".wal"))]
    # The detail view reads the clean zone's Parquet files; the star join gives the lake's answer.
    in_lake = lake.con.execute(STAR_JOIN).fetchall()
    in_cli = cli(
        target,
        "SELECT year, customer_region, count(*), round(sum(amount), 2) "
        "FROM transaction_detail GROUP BY ALL ORDER BY ALL",
    )
    assert in_cli.splitlines() == [f"{y},{r},{n},{a}" for y, r, n, a in in_lake]
    calendar = cli(
        target,
        "SELECT count(*), count(DISTINCT time_id), bool_and(is_weekend = "
        "(weekday >= 6)), min(quarter) FROM time_dimension",
    )
    assert calendar == "15,15,true,4"


def test_open_readers_keep_their_version_while_the_file_is_replaced(lake: Lake) -> None:
    lake.load("b1", 1_000, first_id=1, first_day=0, days=2)
    lake.refresh()
    target = lake.home / "marts.duckdb"
    write_snapshot(lake, target)
    reader = duckdb.connect(str(target), read_only=True)  # holds the published file open
    count = "SELECT sum(txn_count) FROM transaction_daily_summary"

    lake.load("b2", 500, first_id=10_000, first_day=1, days=1)
    lake.refresh()
    write_snapshot(lake, target)  # no lock conflict with the open reader

    assert reader.execute(count).fetchone() == (1_000,)
    reader.close()
    assert cli(target, count) == "1500"


def test_duckdb_cli_and_sqlalchemy_read_while_the_snapshot_is_rewritten(lake: Lake) -> None:
    lake.load("b0", 2_000, first_id=1, first_day=0, days=5)
    lake.refresh()
    target = lake.home / "marts.duckdb"
    write_snapshot(lake, target)
    stop, failures = threading.Event(), []

    def keep_loading() -> None:
        try:
            for i in range(1, 5):
                lake.load(f"b{i}", 500, first_id=i * 10_000, first_day=i % 5, days=1)
                lake.refresh()
                write_snapshot(lake, target)
        except Exception as exc:  # reported below
            failures.append(repr(exc))
        finally:
            stop.set()

    writer = threading.Thread(target=keep_loading)
    writer.start()
    engine = sa.create_engine(
        f"duckdb:///{target}", connect_args={"read_only": True}, poolclass=sa.NullPool
    )
    seen_cli, seen_sa = [], []
    query = "SELECT sum(txn_count) FROM transaction_daily_summary"
    while not stop.is_set():
        seen_cli.append(int(cli(target, query)))
        with engine.connect() as c:
            seen_sa.append(int(c.execute(sa.text(query)).scalar_one()))
    writer.join()
    engine.dispose()

    assert not failures
    assert seen_cli == sorted(seen_cli) and seen_sa == sorted(seen_sa)  # never goes back
    assert len(set(seen_cli)) >= 2 and len(set(seen_sa)) >= 2  # saw the file change under them
    assert int(cli(target, query)) == 2_000 + 4 * 500


def test_error_zone_tally_reads_only_new_files(lake: Lake) -> None:
    bucket = Bucket.open(lake.settings.bucket_url)
    bucket.write_atomic("error/date=2026-10-01/e-0-1.jsonl", b'{"reason":"PARSE"}\n' * 3)
    bucket.write_atomic("error/date=2026-10-02/e-0-9.jsonl", b'{"reason":"TYPE"}\n{"x":1}\n')
    tally = ErrorZoneTally(bucket)
    assert tally.update(lake.con) is True
    assert tally.update(lake.con) is False  # nothing new: nothing read
    bucket.write_atomic("error/date=2026-10-02/e-1-4.jsonl", b'{"reason":"PARSE"}\n')
    assert tally.update(lake.con) is True
    assert tally.total() == 6
    assert error_daily_reason(tally).to_pylist() == [
        {"date": date(2026, 10, 1), "reason": "PARSE", "records": 3},
        {"date": date(2026, 10, 2), "reason": "PARSE", "records": 1},
        {"date": date(2026, 10, 2), "reason": "TYPE", "records": 1},
        {"date": date(2026, 10, 2), "reason": "UNKNOWN", "records": 1},
    ]


def test_publisher_writes_when_something_changed(
    lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = lake.home / "marts.duckdb"
    bucket = Bucket.open(lake.settings.bucket_url)
    errors = ErrorZoneTally(bucket)
    publisher = Publisher(lambda: lake.con, errors, target, min_interval=0.0)
    monkeypatch.setattr(offsets, "appended", lambda admin, topic: 103)  # no broker here

    def seen() -> Reconciliation:
        return reconciliation.observe(lake.con, errors, cast(AdminClient, None), "raw")

    lake.load("b1", 100, first_id=1, first_day=0, days=1)
    lake.refresh()
    assert publisher.publish(seen()) is True
    assert publisher.publish(seen()) is False  # nothing changed since
    bucket.write_atomic("error/date=2026-10-01/e-0-1.jsonl", b'{"reason":"RANGE"}\n' * 3)
    assert publisher.publish(seen()) is True

    con = duckdb.connect(str(target), read_only=True)
    assert con.execute("SELECT * EXCLUDE (observed_at) FROM reconciliation").fetchall() == [
        (103, 100, 0, 3, 0, True)
    ]
    assert con.execute("SELECT reason, records FROM error_daily_reason").fetchall() == [
        ("RANGE", 3)
    ]
    con.close()


JDBC = "org.duckdb:duckdb_jdbc:1.5.5.0"


def jdbc_jar() -> Path:
    """The DuckDB JDBC driver from Maven Central (cached in ~/.m2), as Tableau's recipe uses."""
    if not (shutil.which("java") and shutil.which("mvn")):
        pytest.skip("needs java and mvn for the JDBC driver")
    group, artifact, version = JDBC.split(":")
    jar = (
        Path.home()
        / ".m2"
        / "repository"
        / Path(*group.split("."))
        / artifact
        / version
        / f"{artifact}-{version}.jar"
    )
    if not jar.exists():
        got = subprocess.run(
            ["mvn", "-q", "dependency:get", f"-Dartifact={JDBC}"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert got.returncode == 0, got.stdout[-2000:]
    return jar


def test_jdbc_driver_reads_the_snapshot_as_tableau_does(lake: Lake) -> None:
    lake.load("b1", 2_000, first_id=1, first_day=0, days=4)
    lake.refresh()
    target = lake.home / "marts.duckdb"
    write_snapshot(lake, target)
    query = (
        "SELECT customer_region, sum(txn_count) FROM transaction_daily_summary "
        "GROUP BY ALL ORDER BY 1"
    )
    done = subprocess.run(
        [
            "java",
            "-cp",
            str(jdbc_jar()),
            str(Path(__file__).with_name("ReadSnapshot.java")),
            str(target),
            query,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    want = lake.con.execute(
        "SELECT customer_region, count(*) FROM transaction_view GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert done.stdout.splitlines() == [f"{r},{n}" for r, n in want]
