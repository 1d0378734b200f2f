"""The loader never stops on what a batch carries: the rows at fault go to the error zone, in the
same transaction that moves the ledger past them, and the rest of the batch loads."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from headrace.codec.registry import default_registry
from headrace.lake import bookkeeping, warehouse
from headrace.lake.bucket import Bucket
from headrace.runtime import crash_points
from headrace.runtime.settings import CommonSettings
from services.loader.runner import Frame, LoaderHandler
from tests.unit.test_loader_and_summary import NO_PRODUCER, TOPICS, event


@pytest.fixture
def bucket(tmp_path: Path) -> Bucket:
    return Bucket.open(str(tmp_path / "bucket"))


@pytest.fixture
def handler(tmp_path: Path, bucket: Bucket) -> LoaderHandler:
    common = CommonSettings(bucket_url=bucket.root, catalog_url=str(tmp_path / "catalog.sqlite"))
    session = warehouse.Session(common)
    warehouse.migrate(session.con)
    return LoaderHandler(
        session, NO_PRODUCER, TOPICS, "g", "a", "salt", default_registry(), None, bucket
    )


def frames(events: list[dict[str, Any]], partition: int = 0) -> list[Frame]:
    registry = default_registry()
    return [
        (registry.encode("transaction.v1.avsc", e), partition, offset, 1_764_000_000_000)
        for offset, e in enumerate(events)
    ]


def error_zone(bucket: Bucket) -> list[dict[str, Any]]:
    paths = sorted(bucket.fs.glob(bucket.url("error/date=*/*.jsonl")))
    return [orjson.loads(line) for p in paths for line in Path(p).read_bytes().splitlines()]


def land(handler: LoaderHandler, batch: list[Frame]) -> dict[str, Any] | None:
    table, rejected = handler.decode(batch)
    return handler.load(table, "b-1", rejected, batch)


def test_a_frame_that_does_not_decode_is_rejected_and_the_rest_loads(
    handler: LoaderHandler, bucket: Bucket
) -> None:
    batch = frames([event(i + 1, 20) for i in range(10)])
    batch[4] = (b"\x00\x00\x00\x00\x01garbage", 0, 4, 1_764_000_000_000)
    manifest = land(handler, batch)
    assert manifest is not None and manifest["rows"] == 9 and manifest["rejected"] == 1
    [kept] = error_zone(bucket)
    assert (kept["reason"], kept["stage"], kept["source_offset"]) == ("UNPROCESSABLE", "loader", 4)
    assert kept["source_topic"] == TOPICS.validated
    assert base64.b64decode(kept["original_base64"]) == batch[4][0]
    assert bookkeeping.ledger_offsets(handler.session.con, "g", TOPICS.validated) == {0: 10}


def test_a_row_the_warehouse_transaction_fails_on_is_isolated(
    handler: LoaderHandler, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crash_points, "_POISON", ("loader", b"POISON"))
    events = [event(i + 1, 20) for i in range(40)]
    events[25]["source_system"] = "POISON"
    batch = frames(events)
    manifest = land(handler, batch)
    assert manifest is not None and (manifest["rows"], manifest["rejected"]) == (39, 1)
    [kept] = error_zone(bucket)
    assert kept["source_offset"] == 25 and "InjectedPoison" in kept["problems"][0]["message"]
    con = handler.session.con
    ids = {r[0] for r in con.execute("SELECT transaction_id FROM transaction_fact").fetchall()}
    assert ids == set(range(1, 41)) - {26}
    assert bookkeeping.ledger_offsets(con, "g", TOPICS.validated) == {0: 40}
    # No trial left a file behind: the clean zone holds the committed batch's files only.
    fact_files = con.execute(
        "SELECT count(*) FROM ducklake_list_files('lake', 'transaction_fact')"
    ).fetchone()
    on_disk = list(Path(bucket.root).rglob("transaction_fact/**/*.parquet"))
    assert fact_files is not None and len(on_disk) == fact_files[0]
    # Consumed again (a crash after COMMIT), the batch adds nothing and rewrites nothing.
    assert land(handler, batch) is None
    assert len(error_zone(bucket)) == 1


def test_a_step_that_fails_on_every_row_is_raised_not_isolated(
    handler: LoaderHandler, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert land(handler, frames([event(1, 20)])) is not None  # a row that passed: the canary
    monkeypatch.setattr(crash_points, "_POISON", ("loader", b"pos"))  # every source_system
    batch = [(f, 0, o + 1, t) for f, _, o, t in frames([event(i + 2, 20) for i in range(5)])]
    with pytest.raises(crash_points.InjectedPoison):
        land(handler, batch)
    assert error_zone(bucket) == []


def test_a_rejection_whose_transaction_never_committed_is_undone_on_assignment(
    bucket: Bucket,
) -> None:
    from headrace.contract.envelope import Problem
    from services.loader import rejections
    from services.loader.rejections import Rejected

    def rejected(offset: int) -> Rejected:
        problem = Problem("UNPROCESSABLE", None, "loader: ValueError: x")
        return Rejected(TOPICS.validated, 2, offset, 1_764_000_000_000, b"frame", problem)

    # A crash after the files were written: offset 5 committed (ledger 6), offset 9 did not.
    rejections.keep(bucket, [rejected(5), rejected(9)])
    assert len(error_zone(bucket)) == 2
    assert rejections.settle(bucket, TOPICS.validated, 2, next_offset=6) == 1
    assert [e["source_offset"] for e in error_zone(bucket)] == [5]
    markers = f"{rejections.MARKERS}/{TOPICS.validated}/p002/*"
    assert bucket.glob(markers) == []
    # Committed: the marker goes at once, the file stays.
    rejections.keep(bucket, [rejected(12)])
    rejections.done(bucket, [rejected(12)])
    assert bucket.glob(markers) == []
    assert rejections.settle(bucket, TOPICS.validated, 2, next_offset=0) == 0
    assert sorted(e["source_offset"] for e in error_zone(bucket)) == [5, 12]


def test_a_batch_of_rejections_only_commits_and_the_summary_refresh_takes_it(
    handler: LoaderHandler, bucket: Bucket
) -> None:
    from services.summarizer.core import refresh_pending

    batch: list[Frame] = [(b"\x00\x00\x00\x00\x09junk", 1, o, None) for o in range(3)]
    manifest = land(handler, batch)
    assert manifest is not None and (manifest["rows"], manifest["rejected"]) == (0, 3)
    assert bookkeeping.ledger_offsets(handler.session.con, "g", TOPICS.validated) == {1: 3}
    con = handler.session.con
    con.execute("BEGIN")
    assert refresh_pending(con) == (1, [])
    con.execute("COMMIT")
    assert len(error_zone(bucket)) == 3
