"""A backfill through the real broker and services: years of history in one replay, at the default
memory budget. Day partitions made the loader's write hold a buffer per day touched, so such a
batch ran out of memory at every restart; now every batch writes a bounded number of partitions.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from headrace.dev.local_pipeline import LocalPipeline
from headrace.dev.sample_events import generate
from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings
from services.producer.runner import replay
from tests.conftest import wait_settled

pytestmark = pytest.mark.integration
Start = Callable[[CommonSettings], LocalPipeline]
EVENTS = 20_000
DAYS = 2_400


def test_years_of_history_load_in_one_replay_at_the_default_budget(
    make_settings: Callable[..., CommonSettings], start_pipeline: Start, tmp_path: Path
) -> None:
    common = make_settings()
    pipeline = start_pipeline(common)
    sample = tmp_path / "history.jsonl"
    generate(sample, EVENTS, bad_ratio=0.0, seed=5, days=DAYS)
    assert replay(sample, common, show_progress=False) == EVENTS

    counts = wait_settled(common, EVENTS, pipeline, timeout=240)

    assert counts.fact_rows == EVENTS
    con = warehouse.connect(common, read_only=True)
    try:
        days, files, batches = con.execute(
            """SELECT (SELECT count(DISTINCT time_id) FROM transaction_fact),
                      (SELECT count(*) FROM ducklake_list_files('lake', 'transaction_fact')),
                      (SELECT count(*) FROM load_batch WHERE fact_rows > 0)"""
        ).fetchone() or (0, 0, 0)
    finally:
        con.close()
    assert days > 2_000
    # At most HEADRACE_LOADER_MAX_PARTITIONS_PER_BATCH (32) files per batch, not one per day.
    assert files <= 32 * batches and files < days / 10, (files, batches, days)
