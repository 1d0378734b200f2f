"""The loader's warehouse transaction and the summary refresh, on a real DuckLake in a temp dir."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer

from headrace.audit.invariants import Checker
from headrace.codec.registry import default_registry
from headrace.kafka.topics import Topics
from headrace.lake import bookkeeping, warehouse
from headrace.lake.bucket import Bucket
from headrace.runtime.settings import CommonSettings
from services.loader import seen_ids
from services.loader.core import decode_batch
from services.loader.id_snapshots import IdSnapshots
from services.loader.runner import LoaderHandler
from services.summarizer.core import apply_refresh, prepare_refresh, refresh_pending
from services.summarizer.grain import GRAIN_SQL, NEW_BATCHES, read_grain

TOPICS = Topics("u")
# The producer only announces a committed batch, in `handle`; these tests call decode and load
# directly and never reach it, so no client is created.
NO_PRODUCER = cast(Producer, None)


def event(
    tid: int, day: int, account: str = "123456789012", amount: float = 10.0
) -> dict[str, Any]:
    return {
        "transaction_id": tid,
        "amount": amount,
        "processing_duration": 1.0,
        "status": "COMPLETED",
        "source_system": "pos",
        "account_number": account,
        "account_type": "CHECKING",
        "customer_region": "EU",
        "event_time": datetime(2026, 11, day, 12, tzinfo=UTC),
    }


@pytest.fixture
def session(tmp_path: Path) -> warehouse.Session:
    common = CommonSettings(
        bucket_url=str(tmp_path / "bucket"), catalog_url=str(tmp_path / "catalog.sqlite")
    )
    s = warehouse.Session(common)
    warehouse.migrate(s.con)
    return s


@pytest.fixture
def con(session: warehouse.Session) -> duckdb.DuckDBPyConnection:
    return session.con


def loader(
    session: warehouse.Session, instance: str = "a", snapshots: IdSnapshots | None = None
) -> LoaderHandler:
    registry = default_registry()
    return LoaderHandler(session, NO_PRODUCER, TOPICS, "g", instance, "salt", registry, snapshots)


def land(
    on: warehouse.Session | LoaderHandler,
    batch: list[tuple[dict[str, Any], tuple[int, int]]],
    batch_id: str,
    instance: str = "a",
) -> dict[str, Any] | None:
    """Land v1 events read at (partition, offset) of validated, through the loader's decode.

    Given a session, a new loader lands them (one that knows no ids yet, as after a restart);
    given a loader, that one, with the ids it has seen.
    """
    registry = default_registry()
    table = decode_batch(
        TOPICS.validated,
        [registry.encode("transaction.v1.avsc", r) for r, _ in batch],
        [p for _, (p, _) in batch],
        [o for _, (_, o) in batch],
        [None] * len(batch),
        registry.definition,
    )
    handler = loader(on, instance) if isinstance(on, warehouse.Session) else on
    return handler.load(table, batch_id)


def src(partition: int, offset: int) -> tuple[int, int]:
    return partition, offset


def test_batch_lands_with_masked_accounts_stable_keys_and_lineage(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection
) -> None:
    manifest = land(session, [(event(1, 20), src(0, 0)), (event(2, 21), src(0, 1))], "b1")
    assert manifest is not None
    assert (manifest["rows"], manifest["duplicates"], manifest["days"]) == (
        2,
        0,
        [20261120, 20261121],
    )
    assert con.execute("SELECT masked_account_number FROM account_dimension").fetchall() == [
        ("********9012",)
    ]
    # Keys derive from the data: another replica computes the same account_id.
    other = duckdb.connect()
    expected = other.execute(
        "SELECT CAST(md5_number_lower('salt' || '123456789012') >> 1 AS BIGINT)"
    ).fetchone()
    assert con.execute("SELECT DISTINCT account_id FROM transaction_fact").fetchone() == expected
    assert con.execute(
        "SELECT time_id, year, quarter, month, day, weekday, is_weekend FROM time_dimension "
        "ORDER BY 1"
    ).fetchall() == [(20261120, 2026, 4, 11, 20, 5, False), (20261121, 2026, 4, 11, 21, 6, True)]
    assert bookkeeping.ledger_offsets(con, "g", TOPICS.validated) == {0: 2}
    # Fact rows go to Parquet; the batch's small rows (ledger, lineage, dimensions) stay in the
    # catalog (005_inline_small_tables.sql), so reading them never lists a growing file set.
    files = bookkeeping.batch_files(con, "b1")
    assert all(f.size > 0 for f in files)
    assert [f.path.split("/")[:2] for f in files] == [
        ["transaction_fact", "time_bucket=20261120"],
        ["transaction_fact", "time_bucket=20261121"],
    ]


def test_a_service_session_has_one_thread_and_no_file_cache_an_analyst_connection_has_both(
    session: warehouse.Session,
) -> None:
    settings = "SELECT current_setting('enable_external_file_cache'), current_setting('threads')"
    assert session.con.execute(settings).fetchone() == (False, 1)
    session.reconnect()
    assert session.con.execute(settings).fetchone() == (False, 1)
    analyst = warehouse.connect(session.settings, read_only=True)
    default = duckdb.connect().execute(settings).fetchone()
    assert default is not None
    assert analyst.execute(settings).fetchone() == default == (True, default[1])


def test_fact_files_are_parquet_version_2(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    land(session, [(event(1, 20), src(0, 0)), (event(2, 20), src(0, 1))], "b1")
    (file,) = bookkeeping.batch_files(con, "b1")
    path = str(tmp_path / "bucket" / "clean" / "main" / file.path)
    encodings = dict(
        con.execute("SELECT path_in_schema, encodings FROM parquet_metadata(?)", [path]).fetchall()
    )
    # Delta and byte-stream-split encodings exist in version 2 only (006_parquet_v2.sql).
    assert (encodings["transaction_id"], encodings["amount"]) == (
        "DELTA_BINARY_PACKED",
        "BYTE_STREAM_SPLIT",
    )
    # Readers other than DuckDB take them: Arrow's, for one.
    assert sorted(pq.read_table(path, columns=["transaction_id"]).column(0).to_pylist()) == [1, 2]


def test_the_day_of_an_event_is_its_utc_day_whatever_the_session_time_zone(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection
) -> None:
    con.execute("SET TimeZone = 'America/New_York'")
    late_evening = event(1, 20) | {
        "event_time": datetime(2026, 11, 20, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    }
    before_epoch = event(2, 20) | {"event_time": datetime(1969, 12, 31, 23, 0, tzinfo=UTC)}
    manifest = land(session, [(late_evening, src(0, 0)), (before_epoch, src(0, 1))], "b1")
    assert manifest is not None
    assert manifest["days"] == [19691231, 20261121]
    assert con.execute(
        "SELECT time_id, date, weekday FROM time_dimension ORDER BY 1"
    ).fetchall() == [(19691231, date(1969, 12, 31), 3), (20261121, date(2026, 11, 21), 6)]


def test_first_copy_wins_and_later_copies_are_recorded(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection
) -> None:
    land(session, [(event(1, 20), src(0, 0))], "b1")
    manifest = land(
        session,
        [
            (event(1, 20, amount=99.0), src(0, 1)),
            (event(2, 20), src(0, 2)),
            (event(2, 20, amount=5.0), src(0, 3)),
        ],
        "b2",
    )
    assert manifest is not None and (manifest["rows"], manifest["duplicates"]) == (1, 2)
    assert con.execute(
        "SELECT transaction_id, amount FROM transaction_fact ORDER BY 1"
    ).fetchall() == [(1, 10.0), (2, 10.0)]
    assert con.execute(
        "SELECT transaction_id, source_offset FROM transaction_duplicate ORDER BY 2"
    ).fetchall() == [(1, 1), (2, 3)]


def test_offsets_the_ledger_covers_are_not_loaded_again(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection
) -> None:
    batch = [(event(1, 20), src(0, 0)), (event(2, 20), src(0, 1))]
    land(session, batch, "b1", instance="a")
    # A paused replica wakes up with the same batch after another one loaded it.
    assert land(session, batch, "b2", instance="b") is None
    assert con.execute("SELECT count(*) FROM transaction_fact").fetchone() == (2,)
    assert con.execute("SELECT count(*) FROM transaction_duplicate").fetchone() == (0,)


def test_a_loader_keeps_the_ids_it_loaded(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection
) -> None:
    a = loader(session)
    land(a, [(event(1, 20), src(0, 0)), (event(2, 20), src(1, 0))], "b1")
    land(a, [(event(3, 20), src(0, 1))], "b2")
    manifest = land(a, [(event(2, 20), src(1, 1)), (event(3, 21), src(0, 2))], "b3")
    assert manifest is not None and (manifest["rows"], manifest["duplicates"]) == (0, 2)
    assert con.execute("SELECT count(*) FROM transaction_fact").fetchone() == (3,)


def test_ids_another_loader_committed_meanwhile_are_seen(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection
) -> None:
    a, b = loader(session, "a"), loader(session, "b")
    land(a, [(event(1, 20), src(0, 0))], "b1")
    # While `a` was paused, `b` owned partition 0 and loaded id 2 there.
    land(b, [(event(2, 20), src(0, 1))], "b2")
    # Back with `a`: a later copy of id 2 is a duplicate, though `a` never loaded it.
    manifest = land(a, [(event(2, 20), src(0, 2)), (event(4, 20), src(0, 3))], "b3")
    assert manifest is not None and (manifest["rows"], manifest["duplicates"]) == (1, 1)
    assert con.execute(
        "SELECT transaction_id, count(*) FROM transaction_fact GROUP BY 1 ORDER BY 1"
    ).fetchall() == [(1, 1), (2, 1), (4, 1)]


def test_a_new_loader_reads_the_ids_of_every_partition_it_meets(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection
) -> None:
    a = loader(session, "a")
    land(a, [(event(1, 20), src(0, 0)), (event(2, 20), src(1, 0)), (event(3, 20), src(2, 0))], "b1")
    # A restarted loader (no ids in memory) gets a batch over two of those partitions.
    b = loader(session, "b")
    batch = [(event(1, 20), src(0, 1)), (event(2, 21), src(1, 1)), (event(5, 20), src(1, 2))]
    manifest = land(b, batch, "b2")
    assert manifest is not None and (manifest["rows"], manifest["duplicates"]) == (1, 2)
    assert sorted(b.seen.ids) == [0, 1]
    assert [len(b.seen.ids[p]) for p in (0, 1)] == [1, 2]


def restarted_reads(
    session: warehouse.Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lose_delta: bool
) -> list[tuple[list[int], int]]:
    """Loader a commits two batches and stops; b lands a third batch: the fact reads b made."""
    monkeypatch.setattr(seen_ids, "SAVE_AT_LEAST", 2)
    snapshots = IdSnapshots(Bucket.open(str(tmp_path / "bucket")), TOPICS.validated)
    a = loader(session, "a", snapshots)
    land(a, [(event(1, 20), src(0, 0)), (event(2, 20), src(0, 1))], "b1")
    snapshots.flush()
    a.seen.save_grown()  # as after each batch: 2 ids, complete before offset 2
    land(a, [(event(3, 20), src(0, 2))], "b2")
    snapshots.flush()
    a.seen.save_grown()  # grew by 1 only: no copy, the commit's delta only
    copies, deltas = snapshots._saved(0)
    assert [offset for _, offset in copies] == [2]
    assert [(begin, end) for _, begin, end in deltas] == [(2, 3)]  # [0, 2) went with the copy
    if lose_delta:  # as after a kill between the commit and the delta's upload
        Path(deltas[0][0]).unlink()
    b = loader(session, "b", snapshots)
    reads: list[tuple[list[int], int]] = []
    read = b.seen._read

    def recorded(
        con: duckdb.DuckDBPyConnection, ps: list[int], lowest: int
    ) -> tuple[npt.NDArray[np.int32], seen_ids.Ids, seen_ids.Ids]:
        reads.append((ps, lowest))
        return read(con, ps, lowest)

    monkeypatch.setattr(b.seen, "_read", recorded)
    batch = [(event(1, 20), src(0, 3)), (event(3, 21), src(0, 4)), (event(4, 20), src(0, 5))]
    manifest = land(b, batch, "b3")
    # Ids 1 and 3 are duplicates, through the saved copy and the delta or the row read after it.
    assert manifest is not None and (manifest["rows"], manifest["duplicates"]) == (1, 2)
    return reads


def test_a_restarted_loader_reads_no_fact_row_when_the_deltas_reach_the_ledger(
    session: warehouse.Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert restarted_reads(session, tmp_path, monkeypatch, lose_delta=False) == []


def test_a_restarted_loader_reads_only_the_rows_past_the_saved_ids(
    session: warehouse.Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = restarted_reads(session, tmp_path, monkeypatch, lose_delta=True)
    assert reads == [([0], 2)]  # partition 0 from the saved copy's offset on


def test_summary_refresh_covers_late_events_and_equals_recomputation(
    session: warehouse.Session,
    con: duckdb.DuckDBPyConnection,
) -> None:
    land(
        session,
        [(event(1, 20), src(0, 0)), (event(2, 21, account="000000000007"), src(0, 1))],
        "b1",
    )
    assert refresh_pending(con) == (1, [20261120, 20261121])
    land(session, [(event(3, 20, amount=5.0), src(1, 0))], "b2")  # a late event for an old day
    assert refresh_pending(con) == (1, [20261120])
    assert refresh_pending(con) == (0, [])
    stored = con.execute(
        "SELECT year, month, day, customer_region, txn_count, total_amount "
        "FROM transaction_daily_summary ORDER BY ALL"
    ).fetchall()
    recomputed = con.execute(
        "SELECT year, month, day, customer_region, count(*), sum(amount) "
        "FROM transaction_view GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert stored == recomputed == [(2026, 11, 20, "EU", 2, 15.0), (2026, 11, 21, "EU", 1, 10.0)]


def daily(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT day, txn_count, total_amount FROM transaction_daily_summary ORDER BY ALL"
    ).fetchall()


def test_a_batch_loaded_while_a_refresh_is_read_stays_pending(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection
) -> None:
    land(session, [(event(1, 20), src(0, 0))], "b1")
    prepared = session.read(prepare_refresh)
    land(session, [(event(2, 20, amount=5.0), src(0, 1))], "b2")
    assert prepared is not None and session.transact(lambda c: apply_refresh(c, prepared))
    assert daily(con) == [(20, 1, 10.0)]  # what the refresh read
    assert refresh_pending(con) == (1, [20261120])
    assert daily(con) == [(20, 2, 15.0)]


def test_a_refresh_overtaken_by_another_summarizer_writes_nothing(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection
) -> None:
    land(session, [(event(1, 20), src(0, 0))], "b1")
    stale = session.read(prepare_refresh)
    land(session, [(event(2, 20, amount=5.0), src(0, 1))], "b2")
    assert refresh_pending(con) == (2, [20261120])  # another summarizer, on a newer snapshot
    assert stale is not None and not session.transact(lambda c: apply_refresh(c, stale))
    assert daily(con) == [(20, 2, 15.0)]


def test_the_grain_kept_batch_by_batch_equals_one_read_of_everything(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection
) -> None:
    batches = [
        [(event(1, 20), src(0, 0)), (event(2, 21, account="000000000007"), src(0, 1))],
        [(event(3, 20, amount=2.5), src(1, 0)), (event(4, 22), src(1, 1))],
        [(event(5, 21, amount=7.0), src(0, 2)), (event(1, 20), src(0, 3))],  # a duplicate
    ]
    for i, batch in enumerate(batches):
        land(session, batch, f"b{i}")
        assert refresh_pending(con)[0] == 1  # each refresh merges one batch into the kept grain
    kept = con.execute("SELECT * FROM mart_grain ORDER BY ALL").fetchall()
    once = con.execute(f"SELECT * FROM ({GRAIN_SQL.format(where='')}) ORDER BY ALL").fetchall()
    assert kept == once
    assert sum(row[5] for row in kept) == 5


def test_a_refresh_reads_the_pending_batches_fact_rows_only(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    for i in range(4):  # all on one day: the kept grain of that day covers b0..b2
        land(session, [(event(10 + i, 20), src(0, i))], f"b{i}")
        if i < 3:
            refresh_pending(con)
    con.execute(f"SET enable_profiling = 'json'; SET profiling_output = '{tmp_path}/p.json'")
    grain = read_grain(con, ["b3"], [20261120])  # what a summarizer that just started reads
    con.execute("SET enable_profiling = 'no_output'")
    assert grain is not None and sum(grain.column("txn_count").to_pylist()) == 4
    scans = [
        op["extra_info"]
        for op in operators(json.loads((tmp_path / "p.json").read_text()))
        if op.get("extra_info", {}).get("Table") == "transaction_fact"
    ]
    assert [scan["Total Files Read"] for scan in scans] == ["1"]  # of 4
    assert refresh_pending(con) == (1, [20261120])
    assert daily(con) == [(20, 4, 40.0)]


def test_reading_new_batches_skips_the_other_batches_files(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    for i in range(4):
        land(session, [(event(10 + i, 20), src(0, i))], f"b{i}")
    con.execute(f"SET enable_profiling = 'json'; SET profiling_output = '{tmp_path}/p.json'")
    con.execute(GRAIN_SQL.format(where=NEW_BATCHES), {"batch_ids": ["b3"]}).fetchall()
    con.execute("SET enable_profiling = 'no_output'")
    scans = [
        op["extra_info"]
        for op in operators(json.loads((tmp_path / "p.json").read_text()))
        if op.get("extra_info", {}).get("Table") == "transaction_fact"
    ]
    assert [scan["Total Files Read"] for scan in scans] == ["1"]  # of 4


def operators(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *(op for child in node.get("children", []) for op in operators(child))]


def test_the_summary_check_tolerates_rounding_only(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    land(session, [(event(1, 20), src(0, 0)), (event(2, 21, amount=0.1), src(0, 1))], "b1")
    refresh_pending(con)
    check = Checker(CommonSettings(bucket_url=str(tmp_path / "bucket"))).summaries
    assert check(con).ok
    con.execute("UPDATE transaction_daily_summary SET total_amount = total_amount * (1 + 1e-12)")
    assert check(con).ok  # another order of adding doubles
    con.execute("UPDATE transaction_daily_summary SET total_amount = total_amount + 0.01")
    assert not check(con).ok
    refresh_pending(con)  # nothing pending: the wrong totals stay
    con.execute("DELETE FROM mart_grain; DELETE FROM summary_refresh")  # the rebuild
    refresh_pending(con)
    assert check(con).ok
    con.execute("INSERT INTO transaction_daily_summary SELECT * FROM transaction_daily_summary")
    assert not check(con).ok


def test_a_batch_spanning_years_writes_a_bounded_number_of_partitions(
    session: warehouse.Session, con: duckdb.DuckDBPyConnection
) -> None:
    handler = loader(session)
    handler.max_partitions = 32
    days = [date(1992, 1, 1) + timedelta(days=3 * i) for i in range(900)]  # over seven years
    batch = [
        ({**event(i + 1, 1), "event_time": datetime(d.year, d.month, d.day, tzinfo=UTC)}, src(0, i))
        for i, d in enumerate(days)
    ]
    manifest = land(handler, batch, "backfill")
    assert manifest is not None and manifest["rows"] == 900 and len(manifest["days"]) == 900
    files = [f.path for f in bookkeeping.batch_files(con, "backfill")]
    buckets = {f.split("/")[1] for f in files if f.startswith("transaction_fact/")}
    assert buckets == {f"time_bucket={y}" for y in range(1992, 2000)}  # by year: 8 <= 32
    # A live batch of two days is still partitioned by day.
    manifest = land(
        handler, [(event(5000, 20), src(0, 900)), (event(5001, 21), src(0, 901))], "live"
    )
    files = [f.path for f in bookkeeping.batch_files(con, "live")]
    live = {f.split("/")[1] for f in files if f.startswith("transaction_fact/")}
    assert live == {"time_bucket=20261120", "time_bucket=20261121"}


def test_bucket_width_is_the_finest_that_fits() -> None:
    from services.loader.core import bucket_width

    assert bucket_width([3, 1, 1, 1, 1, 1], 32) == 1
    assert bucket_width([400, 14, 2, 1, 1, 1], 32) == 100
    assert bucket_width([2400, 80, 7, 1, 1, 1], 32) == 10_000
    assert bucket_width([10**6] * 6, 32) == 10_000_000
