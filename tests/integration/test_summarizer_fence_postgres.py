"""Two summarizers refreshing at once on a PostgreSQL catalog summarize each batch once.

Both find the same batches unsummarized. The first is paused inside its writing transaction, its
marts' rows replaced but not committed; the second refreshes meanwhile. With the refresh's
advisory lock the second waits, then finds the batches summarized and writes nothing. Without it
both commit: the days no mart covered yet get their rows twice (inserts never conflict in
DuckLake, and the first refresh's deletes removed nothing).
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pytest

from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics, ensure_pipeline_topics
from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings
from services.summarizer import runner
from services.summarizer.config import SummarizerSettings
from services.summarizer.core import apply_refresh
from services.summarizer.runner import Summarizer
from tests.integration.test_loader_fence_postgres import batch, in_thread, loader

pytestmark = pytest.mark.integration


def test_two_summarizers_at_once_summarize_each_batch_once(
    bootstrap: str, postgres_catalog: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    common = CommonSettings(
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        catalog_url=postgres_catalog,
        bucket_url=str(tmp_path / "bucket"),
    )
    ensure_pipeline_topics(kafka_clients.admin(bootstrap), Topics(prefix))
    warehouse.migrate(warehouse.connect(common))
    assert loader(common, "l").load(batch(range(0, 40)), "b-1") is not None

    reached, resume = threading.Event(), threading.Event()

    def paused_apply(con: duckdb.DuckDBPyConnection, refresh: Any) -> bool:
        applied = apply_refresh(con, refresh)
        if threading.current_thread().name == "first":
            reached.set()
            assert resume.wait(60), "the test never resumed the first summarizer"
        return applied

    monkeypatch.setattr(runner, "apply_refresh", paused_apply)
    first, second = (
        Summarizer(common, SummarizerSettings(data_dir=str(tmp_path / name)))
        for name in ("first", "second")
    )
    one, _ = in_thread("first", first.refresh)
    assert reached.wait(60), "the first summarizer never reached its writes"
    two, _ = in_thread("second", second.refresh)
    two.join(3)
    waited = two.is_alive()  # fenced: waiting for the first's refresh lock
    resume.set()
    one.join(60)
    two.join(60)
    assert not one.is_alive() and not two.is_alive()

    con = warehouse.connect(common, read_only=True)
    assert con.execute("SELECT batch_id, count(*) FROM summary_refresh GROUP BY 1").fetchall() == [
        ("b-1", 1)
    ]
    assert con.execute(
        "SELECT day, sum(txn_count) FROM transaction_daily_summary GROUP BY ALL"
    ).fetchall() == [(20, 40)], "a day summarized twice"
    assert con.execute("SELECT sum(txn_count) FROM mart_grain").fetchone() == (40,)
    assert waited, "the second summarizer committed while the first held the refresh"
