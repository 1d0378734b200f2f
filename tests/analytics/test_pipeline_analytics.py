"""The analysts' layer on a real pipeline: replay, late events, duplicates; snapshot readers
(the DuckDB CLI and SQLAlchemy through duckdb-engine) reading while the loader commits; the
marts against a recomputation; `headrace sql`; the dashboard in headless Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from headrace.audit.reconciliation import Reconciliation
from headrace.dev.infra.ports import free_port_block
from headrace.dev.local_pipeline import LocalPipeline
from headrace.dev.sample_events import generate
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics, ensure_pipeline_topics
from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings
from services.producer.runner import replay
from tests.analytics.conftest import VENV_BIN
from tests.analytics.recompute import mart_mismatches, snapshot_mismatches
from tests.conftest import env_of, wait_settled

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
TOTAL_QUERY = "SELECT coalesce(sum(txn_count), 0) FROM transaction_daily_summary"


@dataclass
class SnapshotReaders:
    """Read the snapshot over and over with the DuckDB CLI and with SQLAlchemy (duckdb-engine)."""

    path: Path
    cli: list[int] = field(default_factory=list)
    sqlalchemy: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        # A new connection per query (NullPool): an open DuckDB connection keeps reading the
        # file version it opened, as the BI recipes in docs/analytics.md say.
        engine = sa.create_engine(
            f"duckdb:///{self.path}", connect_args={"read_only": True}, poolclass=sa.NullPool
        )
        while not self.stop.is_set():
            if not self.path.exists():
                time.sleep(0.05)
                continue
            done = subprocess.run(
                [str(VENV_BIN / "duckdb"), "-readonly", "-csv", "-noheader", str(self.path)],
                input=TOTAL_QUERY + ";\n",
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode != 0 or done.stderr or not done.stdout.strip().isdigit():
                self.failures.append(f"cli: {done.stdout.strip()} {done.stderr.strip()}")
            else:
                self.cli.append(int(done.stdout))
            try:
                with engine.connect() as c:
                    self.sqlalchemy.append(int(c.execute(sa.text(TOTAL_QUERY)).scalar() or 0))
            except sa.exc.DBAPIError as exc:
                self.failures.append(f"sqlalchemy: {exc}")
        engine.dispose()


@dataclass
class Replayed:
    common: CommonSettings
    pipeline: LocalPipeline
    snapshot: Path
    readers: SnapshotReaders
    counts: Reconciliation
    days_before_late: set[int]
    late_days: set[int]
    valid_events: int  # distinct valid events in the first and the late file


def _settings(bootstrap: str, home: Path) -> CommonSettings:
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    common = CommonSettings(
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        bucket_url=str(home / "bucket"),
        catalog_url=str(home / "catalog.sqlite"),
    )
    ensure_pipeline_topics(kafka_clients.admin(bootstrap), Topics(prefix))
    warehouse.migrate(warehouse.connect(common))
    return common


def _days(common: CommonSettings) -> set[int]:
    con = warehouse.connect(common, read_only=True)
    try:
        return {
            r[0] for r in con.execute("SELECT DISTINCT time_id FROM transaction_fact").fetchall()
        }
    finally:
        con.close()


def _wait_snapshot(path: Path, events_in: int, timeout: float = 60.0) -> None:
    """Until the published snapshot shows the reconciliation holding for `events_in` events.

    Read through the CLI: the reader thread may have the file open in this process, and DuckDB
    refuses a second in-process open of one file with another configuration.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            done = subprocess.run(
                [str(VENV_BIN / "duckdb"), "-readonly", "-csv", "-noheader", str(path)],
                input="SELECT events_in, holds FROM reconciliation;\n",
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.stdout.strip() == f"{events_in},true":
                return
        time.sleep(0.3)
    raise AssertionError(f"snapshot {path} did not catch up with {events_in} events")


@pytest.fixture(scope="module")
def replayed(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replayed]:
    assert (VENV_BIN / "duckdb").exists(), "dev dependency missing: pip install duckdb-cli==1.5.5"
    home = tmp_path_factory.mktemp("analytics")
    common = _settings(bootstrap, home)
    env = {
        **env_of(common, home),
        "HEADRACE_SUMMARIZER_SNAPSHOT_MIN_INTERVAL_SECONDS": "0.2",
        "HEADRACE_SUMMARIZER_DASHBOARD_REFRESH_SECONDS": "60",
    }
    pipeline = LocalPipeline(home / "pipeline", env, port_base=free_port_block())
    pipeline.start()
    snapshot = home / "marts.duckdb"
    readers = SnapshotReaders(snapshot)
    reading = threading.Thread(target=readers.run)
    try:
        pipeline.wait_ready()
        first, late = home / "first.jsonl", home / "late.jsonl"
        # Both files end at today's midnight (UTC) so their days do not depend on the wall clock:
        # the first covers 30 whole days (~200 events each), the late one the last 20 of them.
        midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        expected_first = generate(first, 6_000, bad_ratio=0.05, seed=21, now=midnight)
        expected_late = generate(
            late, 1_500, bad_ratio=0.05, seed=22, first_id=1_000_000, now=midnight, days=20
        )
        again = home / "again.jsonl"  # duplicates of the first 500 events
        again.write_bytes(b"".join(first.read_bytes().splitlines(keepends=True)[:500]))
        reading.start()
        replay(first, common, rate_limit=1_500, show_progress=False)  # ~4 s of loading
        wait_settled(common, 6_000, pipeline)
        days_before = _days(common)
        replay(late, common, show_progress=False)
        replay(again, common, show_progress=False)
        counts = wait_settled(common, 8_000, pipeline)
        _wait_snapshot(snapshot, 8_000)
        readers.stop.set()
        reading.join(timeout=60)
        valid = expected_first["VALID"] + expected_late["VALID"]
        yield Replayed(
            common, pipeline, snapshot, readers, counts, days_before, _late_days(common), valid
        )
    finally:
        readers.stop.set()
        if reading.is_alive():
            reading.join(timeout=60)
        pipeline.stop()


def _late_days(common: CommonSettings) -> set[int]:
    """Days that received events with ids from the late file."""
    con = warehouse.connect(common, read_only=True)
    try:
        rows = con.execute(
            "SELECT DISTINCT time_id FROM transaction_fact WHERE transaction_id >= 1000000"
        ).fetchall()
        return {r[0] for r in rows}
    finally:
        con.close()


def test_snapshot_read_by_duckdb_cli_and_sqlalchemy_while_the_loader_commits(
    replayed: Replayed,
) -> None:
    r = replayed.readers
    assert not r.failures, r.failures[:3]
    assert len(r.cli) >= 5 and len(r.sqlalchemy) >= 5
    assert r.cli == sorted(r.cli) and r.sqlalchemy == sorted(r.sqlalchemy)  # never back
    assert len(set(r.cli)) >= 2 and len(set(r.sqlalchemy)) >= 2  # saw it change while loading


def test_marts_equal_recomputation_after_a_replay_with_late_events(replayed: Replayed) -> None:
    # The late file's events landed on days that already had data (and were summarized).
    assert replayed.late_days and replayed.late_days <= replayed.days_before_late
    assert replayed.counts.fact_rows == replayed.valid_events
    assert 0 < replayed.counts.duplicates <= 500
    con = warehouse.connect(replayed.common, read_only=True)
    try:
        assert set(mart_mismatches(con).values()) == {0}
        assert set(snapshot_mismatches(con, replayed.snapshot).values()) == {0}
    finally:
        con.close()
    snap = duckdb.connect(str(replayed.snapshot), read_only=True)
    c = replayed.counts
    assert snap.execute(
        "SELECT events_in, fact_rows, duplicates, error_zone, in_flight FROM reconciliation"
    ).fetchone() == (c.events_in, c.fact_rows, c.duplicates, c.error_zone, 0)
    errors = dict(
        snap.execute("SELECT reason, sum(records) FROM error_daily_reason GROUP BY 1").fetchall()
    )
    snap.close()
    assert errors == c.errors_by_reason


def test_headrace_sql_star_join_by_year_and_region_as_parquet(
    replayed: Replayed, tmp_path: Path
) -> None:
    out = tmp_path / "star.parquet"
    env = {**os.environ, **env_of(replayed.common, tmp_path)}
    done = subprocess.run(
        [
            str(VENV_BIN / "headrace"),
            "sql",
            "SELECT t.year, a.customer_region, count(*) AS txns, sum(f.amount) AS amount "
            "FROM transaction_fact f JOIN time_dimension t USING (time_id) "
            "JOIN account_dimension a USING (account_id) GROUP BY ALL ORDER BY ALL",
            "--format",
            "parquet",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = duckdb.sql(f"SELECT year, customer_region, txns FROM '{out}' ORDER BY ALL").fetchall()
    snap = duckdb.connect(str(replayed.snapshot), read_only=True)
    want = snap.execute(
        "SELECT year, customer_region, sum(txn_count) FROM transaction_daily_summary "
        "GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    snap.close()
    assert rows == want
    assert sum(r[2] for r in rows) == replayed.counts.fact_rows


def test_dashboard_in_headless_chromium(replayed: Replayed, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium (/usr/bin/chromium)")
    url = f"http://127.0.0.1:{replayed.pipeline.port('summarizer')}/dashboard"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1500",
        "--virtual-time-budget=3000",
    ]

    def chromium(*args: str) -> subprocess.CompletedProcess[str]:
        profile = tmp_path / f"profile-{uuid.uuid4().hex[:6]}"
        return subprocess.run(
            [str(CHROMIUM), *flags, f"--user-data-dir={profile}", *args, url],
            capture_output=True,
            text=True,
            timeout=120,
        )

    dom = chromium("--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    charts = dict(
        re.findall(r'<figure class="chart" id="([a-z-]+)"[^>]*data-marks="(\d+)"', dom.stdout)
    )
    assert set(charts) == {"daily-count", "daily-amount", "errors", "freshness", "reconciliation"}
    assert all(int(n) > 0 for n in charts.values()), charts
    assert dom.stdout.count('class="mark"') == sum(int(n) for n in charts.values())
    assert "no data yet" not in dom.stdout
    assert "in = fact + duplicates + error zone: holds" in dom.stdout

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    done = chromium(f"--screenshot={shot}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 20_000
