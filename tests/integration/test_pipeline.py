"""End to end through the real broker: exact counts in the fact table, error zone and raw zone."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from headrace.audit import reconciliation
from headrace.audit.invariants import Checker
from headrace.audit.pipeline_lag import stage_lags
from headrace.dev.local_pipeline import LocalPipeline
from headrace.dev.sample_events import generate
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics
from headrace.lake import error_zone, warehouse
from headrace.lake.bucket import Bucket
from headrace.lake.error_zone import ErrorZoneTally
from headrace.runtime.settings import CommonSettings
from services.producer.runner import replay
from tests.conftest import env_of, wait_settled

pytestmark = pytest.mark.integration
Start = Callable[[CommonSettings], LocalPipeline]


def test_replay_lands_every_event_in_exactly_one_place(
    make_settings: Callable[..., CommonSettings], start_pipeline: Start, tmp_path: Path
) -> None:
    common = make_settings()
    pipeline = start_pipeline(common)
    sample = tmp_path / "sample.jsonl"
    expected = generate(sample, 4_000, bad_ratio=0.1, seed=11)
    assert replay(sample, common, show_progress=False) == 4_000

    counts = wait_settled(common, 4_000, pipeline)

    assert counts.fact_rows == expected["VALID"]
    assert counts.duplicates == 0
    assert counts.raw_zone == 4_000
    bad = {k: v for k, v in expected.items() if k != "VALID"}
    assert counts.errors_by_reason == bad
    _assert_summary_equals_recomputation(common)
    _assert_reconciled_by_arrival_day(common, 4_000)
    _assert_error_records_keep_original_bytes(common, sample)
    _assert_account_numbers_masked(common)
    _assert_http_endpoints(pipeline)


def test_replaying_the_same_file_twice_adds_no_fact_rows(
    make_settings: Callable[..., CommonSettings], start_pipeline: Start, tmp_path: Path
) -> None:
    common = make_settings()
    pipeline = start_pipeline(common)
    sample = tmp_path / "sample.jsonl"
    expected = generate(sample, 2_000, bad_ratio=0.05, seed=5)
    replay(sample, common, show_progress=False)
    first = wait_settled(common, 2_000, pipeline)
    replay(sample, common, show_progress=False)
    second = wait_settled(common, 4_000, pipeline)

    assert first.fact_rows == second.fact_rows == expected["VALID"]
    assert second.duplicates == expected["VALID"]
    assert second.error_zone == 2 * (2_000 - expected["VALID"])
    assert second.holds
    _assert_summary_equals_recomputation(common)


def test_gs_bucket_through_the_emulator(
    make_settings: Callable[..., CommonSettings],
    start_pipeline: Start,
    tmp_path: Path,
    gcs_endpoint: str,
) -> None:
    common = make_settings(bucket_url=f"gs://headrace/{tmp_path.name}", gcs_endpoint=gcs_endpoint)
    pipeline = start_pipeline(common)
    sample = tmp_path / "sample.jsonl"
    expected = generate(sample, 1_000, bad_ratio=0.1, seed=3)
    replay(sample, common, show_progress=False)

    counts = wait_settled(common, 1_000, pipeline)

    assert counts.fact_rows == expected["VALID"]
    assert counts.raw_zone == 1_000
    assert counts.error_zone == 1_000 - expected["VALID"]
    bucket = Bucket.open(common.bucket_url, gcs_endpoint)
    parquet = bucket.glob("clean/**/*.parquet")
    assert parquet and all(p.startswith("gs://headrace/") for p in parquet)
    _assert_summary_equals_recomputation(common)


def _assert_summary_equals_recomputation(common: CommonSettings) -> None:
    con = warehouse.connect(common, read_only=True)
    diff = con.execute(
        """
        WITH recomputed AS (
            SELECT year, month, day, customer_region, count(*) AS txn_count,
                   round(sum(amount), 6) AS total_amount,
                   round(avg(processing_duration), 9) AS avg_processing_duration
            FROM transaction_view GROUP BY ALL),
        stored AS (
            SELECT year, month, day, customer_region, txn_count, round(total_amount, 6),
                   round(avg_processing_duration, 9) FROM transaction_daily_summary)
        SELECT count(*) FROM ((SELECT * FROM recomputed EXCEPT ALL SELECT * FROM stored)
                              UNION ALL (SELECT * FROM stored EXCEPT ALL SELECT * FROM recomputed))
        """
    ).fetchone()
    rows = con.execute("SELECT count(*) FROM transaction_daily_summary").fetchone()
    assert diff == (0,)
    assert rows is not None and rows[0] > 0


def _assert_reconciled_by_arrival_day(common: CommonSettings, total: int) -> None:
    con = warehouse.connect(common, read_only=True)
    days = reconciliation.observe(
        con,
        ErrorZoneTally(Bucket.open(common.bucket_url)),
        kafka_clients.admin(common.bootstrap_servers),
        f"{common.topic_prefix}.raw",
        days=7,
    ).days
    assert days is not None and sum(d.events_in or 0 for d in days.values()) == total
    for day, balance in days.items():
        assert balance.holds, (day, balance)


def _assert_error_records_keep_original_bytes(common: CommonSettings, sample: Path) -> None:
    bucket = Bucket.open(common.bucket_url, common.gcs_endpoint)
    lines = {i: line for i, line in enumerate(sample.read_bytes().splitlines(), start=1)}
    originals = set(lines.values())
    records = error_zone.records(bucket)
    assert records
    for r in records:
        original = (
            base64.b64decode(r["original_base64"])
            if "original_base64" in r
            else r["original"].encode()
        )
        assert original in originals
        assert r["source_topic"] == f"{common.topic_prefix}.raw"
        assert r["stage"] == "validator" and r["problems"] and r["reason"]


def _assert_account_numbers_masked(common: CommonSettings) -> None:
    con = warehouse.connect(common, read_only=True)
    bad = con.execute(
        "SELECT count(*) FROM account_dimension "
        "WHERE NOT regexp_full_match(masked_account_number, '\\*{8}[0-9]{4}')"
    ).fetchone()
    assert bad == (0,)


def _assert_http_endpoints(pipeline: LocalPipeline) -> None:
    for service in ("producer", "stager", "validator", "loader", "summarizer"):
        base = f"http://127.0.0.1:{pipeline.port(service)}"
        for path in ("/healthz", "/readyz"):
            with urllib.request.urlopen(base + path, timeout=5) as r:
                assert r.status == 200, (service, path)
        with urllib.request.urlopen(base + "/metrics", timeout=5) as r:
            assert b"headrace_events" in r.read(), service


def test_invariant_checker_passes_on_a_quiet_pipeline_and_catches_a_planted_duplicate(
    make_settings: Callable[..., CommonSettings], start_pipeline: Start, tmp_path: Path
) -> None:
    common = make_settings()
    pipeline = start_pipeline(common)
    sample = tmp_path / "sample.jsonl"
    generate(sample, 1_500, bad_ratio=0.1, seed=8)
    ack_log = tmp_path / "acks.log"
    replay(sample, common, show_progress=False, ack_log=ack_log)
    wait_settled(common, 1_500, pipeline)
    assert _lags(common) == {"stager": 0, "validator": 0, "loader": 0, "summarizer": 0}
    pipeline.stop()
    assert len(ack_log.read_text().splitlines()) == 1_500

    verdicts = Checker(common, ack_log).run()
    assert [v.name for v in verdicts if not v.ok] == [], verdicts
    assert {v.name.split()[0] for v in verdicts} == {f"I{i}" for i in (1, 2, 3, 4, 5, 6, 8, 11)}

    # Plant a second copy of an error record: I1 and I2 must both see it.
    bucket = Bucket.open(common.bucket_url)
    first = bucket.glob("error/date=*/*.jsonl")[0]
    bucket.write_atomic(
        first.replace(bucket.root + "/", "").replace(".jsonl", "-copy.jsonl"),
        bucket.read_bytes(first),
    )
    failed = {v.name.split()[0] for v in Checker(common, ack_log).run() if not v.ok}
    assert {"I1", "I2"} <= failed

    # With the services stopped, new events are work for stager and validator, and the
    # `headrace lag` command says so and exits 1.
    more = tmp_path / "more.jsonl"
    generate(more, 100, bad_ratio=0, seed=9, first_id=10_000)
    replay(more, common, show_progress=False)
    assert _lags(common) == {"stager": 100, "validator": 100, "loader": 0, "summarizer": 0}
    cli = subprocess.run(
        [sys.executable, "-m", "headrace", "lag"],
        env={**os.environ, **env_of(common, tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 1, cli.stderr
    assert re.search(r"validator\s+100 events", cli.stdout), cli.stdout
    assert re.search(r"loader\s+caught up", cli.stdout), cli.stdout


def _lags(common: CommonSettings) -> dict[str, int]:
    con = warehouse.connect(common, read_only=True)
    try:
        lags = stage_lags(con, common.bootstrap_servers, Topics(common.topic_prefix))
        return {x.stage: x.pending for x in lags}
    finally:
        con.close()
