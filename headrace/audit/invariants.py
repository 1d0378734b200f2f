"""The exactly-once invariants, checked after the pipeline is quiet (docs/guarantees.md).

Used by the fault suite and by `headrace check`. Each check returns a `Verdict`; the truth about
what entered the pipeline is the raw topic itself (and, when given, the producer's ack log: every
acknowledged event must be on raw). The counts that I1 and I4 compare are the reconciliation's
(headrace.audit.reconciliation), observed the way every report and metric observes it; the
checks add what counts cannot show, offset by offset.
"""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import OffsetSpec

from headrace.audit import reconciliation
from headrace.codec.registry import registry_for
from headrace.kafka import clients as kafka_clients
from headrace.kafka import offsets
from headrace.kafka.topics import Topics
from headrace.lake import error_zone, raw_zone, warehouse
from headrace.lake.bucket import Bucket
from headrace.lake.error_zone import ErrorZoneTally
from headrace.runtime.settings import CommonSettings

ERROR_FIELDS = ("source_topic", "source_partition", "source_offset", "stage", "reason", "problems")


@dataclass(frozen=True)
class Verdict:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class TopicRecord:
    partition: int
    offset: int
    value: bytes | None


def read_topic(bootstrap: str, topic: str, isolation: str = "read_committed") -> list[TopicRecord]:
    """Every record of `topic` from the start to the current end, as `isolation` sees them."""
    admin = kafka_clients.admin(bootstrap)
    lows = offsets.topic_offsets(admin, topic, OffsetSpec.earliest())
    highs = offsets.topic_offsets(admin, topic, OffsetSpec.latest())
    ends = {p: high for p, high in highs.items() if high > lows[p]}
    consumer: Consumer = kafka_clients.consumer(
        bootstrap, f"headrace-check-{uuid.uuid4().hex[:8]}", **{"isolation.level": isolation}
    )
    try:
        consumer.assign([TopicPartition(topic, p, lows[p]) for p in ends])
        return list(_drain(consumer, ends))
    finally:
        consumer.close()


def _drain(consumer: Consumer, ends: dict[int, int]) -> Iterator[TopicRecord]:
    # A read_committed consumer never reaches the high watermark when it ends in a transaction
    # marker, so stop at the position instead of the last record's offset.
    idle = 0
    while ends and idle < 20:
        batch = consumer.consume(10_000, 0.5)
        idle = 0 if batch else idle + 1
        for m in batch:
            if m.error() is None:
                yield TopicRecord(m.partition() or 0, m.offset() or 0, m.value())
        for tp in consumer.position(consumer.assignment()):
            if tp.offset >= ends.get(tp.partition, 0):
                ends.pop(tp.partition, None)


class Checker:
    def __init__(self, common: CommonSettings, ack_log: Path | None = None) -> None:
        self.common = common
        self.topics = Topics(common.topic_prefix)
        self.bucket = Bucket.open(common.bucket_url, common.gcs_endpoint)
        self.ack_log = ack_log
        self.registry = registry_for(common)

    def run(self) -> list[Verdict]:
        try:
            con = warehouse.connect(self.common, read_only=True)
        except Exception as exc:  # I8 is exactly "it opens": any failure is the violation
            return [Verdict("I8 catalog reopens", False, str(exc))]
        bootstrap = self.common.bootstrap_servers
        self.balance = reconciliation.observe(
            con, ErrorZoneTally(self.bucket), kafka_clients.admin(bootstrap), self.topics.raw
        )
        self.raw = read_topic(bootstrap, self.topics.raw)
        self.errors = error_zone.records(self.bucket)
        # Records the loader rejected (stage `loader`) left raw and validated as valid events:
        # they count where loaded events count, by the transaction id of their frame.
        self.loader_errors = [e for e in self.errors if e.get("stage") == "loader"]
        self.raw_errors = [e for e in self.errors if e.get("stage") != "loader"]
        self.raw_zone = Counter(
            (r["partition"], r["offset"]) for r in raw_zone.records(self.bucket)
        )
        checks: list[Callable[[duckdb.DuckDBPyConnection], Verdict]] = [
            self.conservation,
            self.no_duplicates,
            self.clean_zone,
            self.no_aborted_reads,
            self.monotonic_ledger,
            self.summaries,
            self.error_records,
        ]
        verdicts = [Verdict("I8 catalog reopens", True, "read-only attach succeeded")]
        verdicts += [check(con) for check in checks]
        con.close()
        return sorted(verdicts, key=lambda v: int(v.name.split()[0][1:]))

    def conservation(self, con: duckdb.DuckDBPyConnection) -> Verdict:
        """I1: every raw offset is a fact row, a recorded duplicate, or an error record."""
        raw = {(r.partition, r.offset): r.value for r in self.raw}
        problems = []
        if self.ack_log is not None:
            acked = {
                tuple(map(int, line.split())) for line in self.ack_log.read_text().splitlines()
            }
            missing = acked - raw.keys()
            if missing:
                problems.append(f"{len(missing)} acknowledged events not on raw")
        unstaged = raw.keys() - self.raw_zone.keys()
        if unstaged:
            problems.append(f"{len(unstaged)} raw events missing from the raw zone")
        rejected = {(e.get("source_partition"), e.get("source_offset")) for e in self.raw_errors}
        if not rejected <= raw.keys():
            problems.append(f"{len(rejected - raw.keys())} error records name no raw offset")
        expected = Counter(_transaction_id(v) for k, v in raw.items() if k not in rejected)
        loaded = Counter(
            tid
            for (tid,) in con.execute(
                "SELECT transaction_id FROM transaction_fact UNION ALL "
                "SELECT transaction_id FROM transaction_duplicate"
            ).fetchall()
        ) + Counter(self._frame_id(e) for e in self.loader_errors)
        if expected != loaded:
            problems.append(
                f"valid raw events {sum(expected.values())} vs fact+duplicates "
                f"{sum(loaded.values())}; missing {sum((expected - loaded).values())}, "
                f"extra {sum((loaded - expected).values())}"
            )
        b = self.balance
        if not b.holds:
            problems.append(f"{b.events_in} raw events but {b.placed} fact+duplicates+errors")
        detail = "; ".join(problems) or f"{b.events_in} raw = {b.placed} fact+duplicates+errors"
        return Verdict("I1 conservation", not problems, detail)

    def no_duplicates(self, con: duckdb.DuckDBPyConnection) -> Verdict:
        """I2: no source offset twice in the fact table or the error zone; first copy wins."""
        dup_fact = con.execute(
            "SELECT count(*) - count(DISTINCT (source_partition, source_offset)), "
            "count(*) - count(DISTINCT transaction_id) FROM transaction_fact"
        ).fetchone() or (0, 0)
        keys = Counter(
            (e.get("source_topic"), e.get("source_partition"), e.get("source_offset"))
            for e in self.errors
        )
        dup_errors = sum(n - 1 for n in keys.values() if n > 1)
        dup_raw = sum(n - 1 for n in self.raw_zone.values() if n > 1)
        ok = dup_fact == (0, 0) and dup_errors == 0 and dup_raw == 0
        detail = (
            f"fact: {dup_fact[0]} repeated offsets, {dup_fact[1]} repeated ids; "
            f"error zone: {dup_errors} repeated offsets; raw zone: {dup_raw} repeated offsets"
        )
        return Verdict("I2 no duplicates", ok, detail)

    def clean_zone(self, con: duckdb.DuckDBPyConnection) -> Verdict:
        """I3: referenced files readable, batch rows match lineage, ranges never overlap."""
        files = [
            r[0]
            for r in con.execute(
                "SELECT data_file FROM ducklake_list_files('lake', 'transaction_fact')"
            ).fetchall()
        ]
        readable = _scalar(con, "SELECT count(*) FROM read_parquet(?)", [files]) if files else 0
        fact = _scalar(con, "SELECT count(*) FROM transaction_fact")
        mismatched = _scalar(
            con,
            """SELECT count(*) FROM load_batch b
               LEFT JOIN (SELECT batch_id, count(*) AS n FROM transaction_fact GROUP BY ALL) f
               USING (batch_id) WHERE coalesce(f.n, 0) <> b.fact_rows""",
        )
        overlaps = _scalar(
            con,
            """WITH r AS (
                 SELECT unnest(from_json(ranges, '[{"partition":"INTEGER","first_offset":"BIGINT",
                                                    "last_offset":"BIGINT"}]'), recursive := true)
                 FROM load_batch)
               SELECT count(*) FROM r a JOIN r b ON a.partition = b.partition
                 AND a.first_offset < b.first_offset AND b.first_offset <= a.last_offset""",
        )
        temp = [f for f in self.bucket.glob("*/date=*/*") if not f.endswith(".jsonl")]
        ok = readable == fact and mismatched == 0 and overlaps == 0
        detail = (
            f"{len(files)} fact files readable with {readable} rows (fact {fact}); "
            f"{mismatched} batches off their lineage; {overlaps} overlapping ranges; "
            f"{len(temp)} unfinished temp files (invisible to *.jsonl readers)"
        )
        return Verdict("I3 clean zone = warehouse", ok, detail)

    def no_aborted_reads(self, con: duckdb.DuckDBPyConnection) -> Verdict:
        """I4: read_committed sees each validated event and each rejection exactly once."""
        bootstrap = self.common.bootstrap_servers
        validated = len(read_topic(bootstrap, self.topics.validated))
        errors = len(read_topic(bootstrap, self.topics.error))
        loaded = self.balance.fact_rows + self.balance.duplicates + len(self.loader_errors)
        ok = validated == loaded and errors == len(self.raw_errors)
        detail = (
            f"validated {validated} vs loaded {loaded} (fact, duplicates, loader rejections); "
            f"error topic {errors} vs error zone {len(self.raw_errors)}"
        )
        return Verdict("I4 no aborted reads", ok, detail)

    def monotonic_ledger(self, con: duckdb.DuckDBPyConnection) -> Verdict:
        """I5: per partition the ledger only moves forward, in the order batches committed."""
        backwards = _scalar(
            con,
            """SELECT count(*) FROM (
                 SELECT next_offset, lag(next_offset) OVER (
                     PARTITION BY consumer_group, topic, "partition" ORDER BY rowid) AS previous
                 FROM offsets_ledger) WHERE next_offset <= previous""",
        )
        return Verdict("I5 monotonic progress", backwards == 0, f"{backwards} backward steps")

    def summaries(self, con: duckdb.DuckDBPyConnection) -> Verdict:
        """I6: the daily summary equals a recomputation from the fact table.

        Counts must be equal; totals to within 1e-9 of their size, because a sum of doubles
        depends on the order it adds them in (the summarizer adds batch by batch).
        """
        diff = _scalar(
            con,
            """WITH recomputed AS (
                   SELECT year, month, day, customer_region, count(*) AS n, sum(amount) AS total
                   FROM transaction_view GROUP BY ALL),
               stored AS (
                   SELECT year, month, day, customer_region, txn_count AS n,
                          total_amount AS total
                   FROM transaction_daily_summary)
               SELECT count(*) FROM recomputed r
               FULL JOIN stored s USING (year, month, day, customer_region)
               WHERE r.n IS DISTINCT FROM s.n
                  OR NOT abs(r.total - s.total) <= 1e-9 * greatest(1, abs(r.total))""",
        )
        repeated = _scalar(
            con,
            """SELECT count(*) - count(DISTINCT (year, month, day, customer_region))
               FROM transaction_daily_summary""",
        )
        return Verdict(
            "I6 summaries",
            diff == 0 and repeated == 0,
            f"{diff} rows differ from a recomputation, {repeated} repeated",
        )

    def error_records(self, _: duckdb.DuckDBPyConnection) -> Verdict:
        """I11: every error record carries where it came from, why, and its original bytes."""
        incomplete = [
            e
            for e in self.errors
            if any(e.get(f) in (None, "", []) for f in ERROR_FIELDS)
            or not ({"original", "original_base64"} & e.keys())
        ]
        return Verdict(
            "I11 complete error records",
            not incomplete,
            f"{len(incomplete)} of {len(self.errors)} records incomplete",
        )

    def _frame_id(self, e: dict[str, Any]) -> int | None:
        """The transaction id in a loader rejection's Confluent frame (None if it has none)."""
        try:
            record = self.registry.decode(base64.b64decode(e.get("original_base64") or ""))
        except Exception:  # an undecodable frame is exactly what the loader may reject
            return None
        tid = record.get("transaction_id")
        return tid if isinstance(tid, int) else None


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    row = con.execute(sql, params or []).fetchone()
    return int(row[0]) if row else 0


def _transaction_id(value: bytes | None) -> int | None:
    try:
        obj = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return obj.get("transaction_id") if isinstance(obj, dict) else None
