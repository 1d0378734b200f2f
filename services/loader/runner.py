"""The loader's Kafka and warehouse side.

One DuckLake transaction per micro-batch holds the fact rows, new dimension rows, duplicates, the
load_batch lineage row and the offsets ledger entries. On assignment the consumer seeks to the
ledger, so a crash anywhere before COMMIT replays the batch and a crash after it replays nothing.
Rows at offsets the ledger already covers (another instance loaded them while this one was paused)
are dropped inside the transaction. The Kafka commit afterwards only keeps lag metrics honest.

No record stops the loader (headrace/contract/poison.py). A frame that does not decode is isolated
at once; a batch whose transaction fails on what it carries is landed again in rolled-back trial
transactions, split until the records that fail alone are found, and then committed without
them: the same transaction writes their error-zone files (services/loader/rejections.py) and
moves the ledger past their offsets, so each still ends in exactly one place.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import duckdb
import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from headrace.codec.registry import Registry, registry_for
from headrace.contract import poison
from headrace.contract.envelope import Problem
from headrace.kafka import clients as kafka_clients
from headrace.kafka import lag_metrics
from headrace.kafka.consumer_loop import BatchPolicy, ConsumerLoop, StopFlag, commit_offsets
from headrace.kafka.topics import Topics
from headrace.lake import bookkeeping, warehouse
from headrace.lake.bucket import Bucket
from headrace.lake.partition_locks import LockKey, partition_key
from headrace.runtime import metrics
from headrace.runtime.crash_points import crash_point, poison_rows
from headrace.runtime.http import Heartbeat
from headrace.runtime.registry import LOADER
from headrace.runtime.settings import CommonSettings
from headrace.serving.service import run_consumer_service
from services.loader import rejections
from services.loader.config import LoaderSettings
from services.loader.core import (
    BATCH_SCHEMA,
    BUCKET_COUNTS_SQL,
    LAND_SQL,
    STAGE_SQL,
    bucket_width,
    decode_batch,
    newest_event_time,
    offset_ranges,
    unloaded,
)
from services.loader.id_snapshots import IdSnapshots
from services.loader.rejections import Rejected
from services.loader.seen_ids import SeenIds

log = logging.getLogger(__name__)
SERVICE = LOADER.name
# A consumed message as the loader decodes it: (frame, partition, offset, timestamp in ms).
Frame = tuple[bytes, int, int, int | None]
MANIFEST_SCHEMA = "load_manifest.v1.avsc"


class LoaderHandler:
    def __init__(
        self,
        session: warehouse.Session,
        producer: Producer,
        topics: Topics,
        group_id: str,
        instance: str,
        salt: str,
        registry: Registry,
        snapshots: IdSnapshots | None = None,
        bucket: Bucket | None = None,
        max_partitions: int = 32,
    ) -> None:
        self.session, self.producer, self.topics = session, producer, topics
        self.group_id, self.instance, self.salt = group_id, instance, salt
        self.registry, self.bucket = registry, bucket
        self.max_partitions = max_partitions
        self.seen = SeenIds(topics.validated, snapshots)
        # How long a start takes to its first commit, logged once (docs/guarantees.md bounds it).
        self.started: float | None = time.monotonic()
        # A frame and a row this loader took before: the canaries of poison.isolate.
        self._good_frame: list[Frame] = []
        self._good_row: pa.Table | None = None

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Revoked partitions left the assignment before this call; their ids are dropped.
        self.seen.keep_only([p.partition for p in consumer.assignment() + partitions])
        # Read without waiting for a writer's turn: this runs in the rebalance callback.
        ledger = self.session.read(self._ledger)
        for p in partitions:
            if p.partition in ledger:
                p.offset = ledger[p.partition]
        if self.bucket is not None:  # rejections whose transaction never committed are undone
            for p in partitions:
                next_offset = ledger.get(p.partition, 0)
                rejections.settle(self.bucket, self.topics.validated, p.partition, next_offset)
        # A kill between the warehouse commit and the Kafka commit leaves the group's committed
        # offsets behind the ledger; with no new data they would stay there, and lag-driven
        # autoscaling (KEDA) would see work that is done. Bring them up to the ledger.
        synced = [p for p in partitions if p.partition in ledger]
        if synced:
            try:
                consumer.commit(offsets=synced, asynchronous=True)
            except KafkaException as exc:  # only the lag view is behind; the ledger rules
                log.warning("committing the ledger's offsets to Kafka failed: %s", exc)

    def handle(self, consumer: Consumer, messages: list[Message]) -> None:
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            batch_id = f"{self.instance}-{uuid.uuid4().hex[:16]}"
            frames: list[Frame] = [
                (
                    m.value() or b"",
                    cast(int, m.partition()),
                    cast(int, m.offset()),
                    m.timestamp()[1],
                )
                for m in messages
            ]
            batch, rejected = self.decode(frames)
            manifest = self.load(batch, batch_id, rejected, frames)
            crash_point("loader.after_commit")
            if manifest is not None:
                # Counted after COMMIT: the transaction above may have run more than once.
                metrics.EVENTS_OUT.labels(SERVICE, "transaction_fact").inc(manifest["rows"])
                metrics.EVENTS_REJECTED.labels(SERVICE, "DUPLICATE").inc(manifest["duplicates"])
                isolated = manifest.pop("rejected")
                if isolated:
                    metrics.EVENTS_OUT.labels(SERVICE, "error").inc(isolated)
                    metrics.EVENTS_REJECTED.labels(SERVICE, poison.REASON).inc(isolated)
                    metrics.ISOLATED_RECORDS.labels(SERVICE).inc(isolated)
                # One lineage query: the manifest lists the files, the metrics count them.
                files = bookkeeping.batch_files(self.session.con, batch_id)
                manifest["files"] = [f.path for f in files]
                if manifest["rows"] or manifest["duplicates"]:
                    metrics.BYTES_WRITTEN.labels(SERVICE, "clean").inc(sum(f.size for f in files))
                    metrics.FILES_WRITTEN.labels(SERVICE, "clean").inc(len(files))
                    newest = newest_event_time(batch)
                    metrics.newest_event(SERVICE, [newest] if newest else [])
                self._announce(manifest)
            crash_point("loader.after_manifest")
            commit_offsets(consumer, messages)
            self.seen.save_grown()
        metrics.EVENTS_IN.labels(SERVICE, self.topics.validated).inc(len(messages))
        metrics.LAST_PROGRESS.labels(SERVICE).set_to_current_time()

    def decode(self, frames: list[Frame]) -> tuple[pa.Table, list[Rejected]]:
        """The frames as one BATCH_SCHEMA table; those that do not decode, rejected."""

        def attempt(piece: Sequence[Frame]) -> pa.Table:
            return decode_batch(
                self.topics.validated,
                [f for f, _, _, _ in piece],
                [p for _, p, _, _ in piece],
                [o for _, _, o, _ in piece],
                [t for _, _, _, t in piece],
                self.registry.definition,
            )

        tables, isolated = poison.isolate(frames, attempt, SERVICE, self._good_frame)
        rejected = [self._rejected(x.item, x.problem) for x in isolated]
        if isolated:  # a good frame of this batch, for the next batch that fails
            bad = {x.item[2] for x in isolated}
            self._good_frame = [f for f in frames if f[2] not in bad][:1] or self._good_frame
        elif frames:
            self._good_frame = frames[:1]
        if len(tables) == 1:
            return tables[0], rejected
        return pa.concat_tables(tables) if tables else BATCH_SCHEMA.empty_table(), rejected

    def _rejected(self, frame: Frame, problem: Problem) -> Rejected:
        value, partition, offset, timestamp_ms = frame
        return Rejected(self.topics.validated, partition, offset, timestamp_ms, value, problem)

    def load(
        self,
        batch: pa.Table,
        batch_id: str,
        rejected: Sequence[Rejected] = (),
        frames: Sequence[Frame] = (),
    ) -> dict[str, Any] | None:
        """One warehouse transaction for the batch; its manifest, or None if nothing was new.

        Should the transaction fail on what the batch carries, the rows at fault are found in
        rolled-back trials (`_isolate`) and the batch commits without them, as rejections.
        """
        met = pc.unique(batch.column("source_partition")).to_pylist()
        if self.seen.missing(met):
            # A partition met for the first time has its ids read from every fact file (a minute
            # on a large warehouse in a slow bucket). Read them before the writers' turn, so the
            # other writers need not wait; the transaction below then reads only what another
            # loader committed since.
            began = time.monotonic()
            rows = self.session.read(lambda con: self.seen.sync(con, met, self._ledger(con)))
            log.info(
                "ids of partitions %s ready in %.1fs (%d fact rows read)",
                sorted(met),
                time.monotonic() - began,
                rows,
            )
        # On a PostgreSQL catalog, the partitions this batch writes to are locked from before
        # BEGIN to after COMMIT, so a paused instance and its successor never both load an offset
        # (headrace/lake/partition_locks.py); a SQLite catalog's writers take turns instead.
        locks = self._locks(met, rejected)
        try:
            landed = self.session.transact(
                lambda con: self._land(con, batch, batch_id, rejected), locks
            )
        except Exception as exc:
            if not poison.is_data_failure(exc) or not batch.num_rows:
                raise
            batch, found = self._isolate(batch, exc, frames)
            rejected = [*rejected, *found]
            locks = self._locks(met, rejected)
            landed = self.session.transact(
                lambda con: self._land(con, batch, batch_id, rejected), locks
            )
        metrics.commit_done(SERVICE)
        if self.started is not None:
            log.info("first batch committed %.1fs after start", time.monotonic() - self.started)
            self.started = None
        if landed is None:
            return None
        manifest, partitions, ids, ledger = landed
        if rejected and self.bucket is not None:
            rejections.done(self.bucket, rejected)
        if batch.num_rows:
            self._good_row = batch.slice(0, 1)
        # Only now are the batch's ids in the fact table for every later snapshot.
        self.seen.committed(
            partitions,
            ids,
            {r["partition"]: r["last_offset"] + 1 for r in manifest["ranges"]},
            since=ledger,
        )
        # Their deltas are written several at a time but waited for: a kill before they are in
        # the bucket costs the next owner a read of this batch's fact files.
        self.seen.flush()
        return manifest

    def _locks(self, partitions: Sequence[int], rejected: Sequence[Rejected]) -> list[LockKey]:
        """The locks of every partition a batch's transaction moves the ledger of."""
        touched = {*partitions, *(r.partition for r in rejected)}
        return [partition_key(self.group_id, self.topics.validated, p) for p in touched]

    def _isolate(
        self, batch: pa.Table, exc: Exception, frames: Sequence[Frame]
    ) -> tuple[pa.Table, list[Rejected]]:
        """The batch without the rows that fail alone, and those rows as rejections (with their
        frames, as consumed)."""
        log.warning("loader: a batch of %d failed (%r); finding the rows at fault", len(batch), exc)

        good = self._good_row

        def trial(rows: Sequence[int]) -> None:
            # Row -1 is the canary: a row this loader committed before.
            piece = good if rows == [-1] and good is not None else batch.take(rows)
            self.session.trial(lambda con: self._land(con, piece, "trial", (), trial=True))

        canary = [-1] if good is not None else []
        _, isolated = poison.isolate(list(range(batch.num_rows)), trial, SERVICE, canary)
        if not isolated:  # the whole batch passes now: what failed was not one row's
            raise exc
        rows = [x.item for x in isolated]
        consumed = {(f[1], f[2]): f for f in frames}
        at = batch.select(["source_partition", "source_offset"]).take(pa.array(rows, pa.int64()))
        found = []
        for (partition, offset), x in zip(
            zip(*(c.to_pylist() for c in at.columns), strict=True), isolated, strict=True
        ):
            frame = consumed.get((partition, offset), (b"", partition, offset, None))
            found.append(self._rejected(frame, x.problem))
        keep = np.ones(batch.num_rows, dtype=bool)
        keep[rows] = False
        return batch.filter(pa.array(keep)), found

    def _land(
        self,
        con: duckdb.DuckDBPyConnection,
        batch: pa.Table,
        batch_id: str,
        rejected: Sequence[Rejected] = (),
        trial: bool = False,
    ) -> tuple[dict[str, Any], npt.NDArray[np.int32], npt.NDArray[np.int64], dict[int, int]] | None:
        """The batch's warehouse writes: its manifest, its rows' partitions and ids and the ledger
        it read, or None.

        `rejected` records are written to the error zone and their offsets join the ledger's.
        A `trial` writes neither: the caller rolls it back (`_isolate`).
        """
        con.execute(f"CALL {warehouse.LAKE}.set_commit_message('headrace-loader', ?)", [batch_id])
        ledger = self._ledger(con)
        # A trial lands every row it is given, even one committed before (a canary).
        fresh = batch if trial else unloaded(batch, ledger)
        if fresh.num_rows < batch.num_rows:
            log.warning(
                "%d events already loaded by another instance; skipped",
                batch.num_rows - fresh.num_rows,
            )
        todo = [r for r in rejected if r.offset >= ledger.get(r.partition, 0)]
        partitions = fresh.column("source_partition").to_numpy()
        self.seen.sync(con, partitions, ledger)
        if not fresh.num_rows and not todo:
            return None
        ids = fresh.column("transaction_id").to_numpy()
        now = datetime.now(UTC)
        rows, days = 0, []
        if fresh.num_rows:
            poison_rows(SERVICE, fresh.column("source_system"))
            con.register(
                "batch",
                fresh.append_column("already_loaded", pa.array(self.seen.loaded(partitions, ids))),
            )
            params: dict[str, Any] = {"salt": self.salt, "batch_id": batch_id, "load_ts": now}
            for sql in STAGE_SQL:
                con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
            counts = con.execute(BUCKET_COUNTS_SQL).fetchone()
            params["bucket_width"] = bucket_width(counts or (), self.max_partitions)
            for sql in LAND_SQL:
                con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
            landed = con.execute(
                "SELECT count(*), coalesce(list(DISTINCT time_id), []) FROM fresh"
            ).fetchone()
            assert landed is not None  # an aggregate without GROUP BY returns one row
            rows, days = landed
            con.unregister("batch")
        if trial:
            return None
        ranges = offset_ranges(fresh, [(r.topic, r.partition, r.offset) for r in todo])
        for r in ranges:
            con.execute(
                "INSERT INTO offsets_ledger VALUES (?, ?, ?, ?, ?)",
                [self.group_id, r["topic"], r["partition"], r["last_offset"] + 1, batch_id],
            )
        duplicates = fresh.num_rows - rows
        con.execute(
            "INSERT INTO load_batch VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                batch_id,
                self.instance,
                orjson.dumps(ranges).decode(),
                rows,
                duplicates,
                sorted(days),
                now,
            ],
        )
        self._keep_rejected(todo)
        crash_point("loader.before_commit")
        metrics.commit_starting(SERVICE)
        manifest = {
            "batch_id": batch_id,
            "loader_instance": self.instance,
            "rows": rows,
            "duplicates": duplicates,
            "days": sorted(days),
            "ranges": ranges,
            "files": [],
            "committed_at": now,
            "rejected": len(todo),
        }
        return manifest, partitions, ids, ledger

    def _keep_rejected(self, rejected: Sequence[Rejected]) -> None:
        """Each rejected record's error-zone file, written before the COMMIT that passes it."""
        if not rejected:
            return
        if self.bucket is None:
            raise RuntimeError("this loader has no bucket to keep rejected records in")
        rejections.keep(self.bucket, rejected)
        for r in rejected:
            metrics.zone_written(SERVICE, "error", len(r.line()), 1, 1)

    def _ledger(self, con: duckdb.DuckDBPyConnection) -> dict[int, int]:
        """This group's next offset to load per partition of validated, as the ledger holds it."""
        return bookkeeping.ledger_offsets(con, self.group_id, self.topics.validated)

    def _announce(self, manifest: dict[str, Any]) -> None:
        value = self.registry.encode(MANIFEST_SCHEMA, manifest)
        self.producer.produce(self.topics.loaded, value, manifest["batch_id"].encode())
        if self.producer.flush(30) > 0:
            # The summarizer also catches up from load_batch, so a lost manifest delays, not loses.
            log.error("manifest %s not acknowledged within 30 s", manifest["batch_id"])
            metrics.BATCH_FAILURES.labels(SERVICE).inc()


def build(
    common: CommonSettings, own: LoaderSettings, stop: StopFlag, hb: Heartbeat
) -> ConsumerLoop:
    topics = Topics(common.topic_prefix)
    session = warehouse.Session(
        common, on_retry=lambda: metrics.BATCH_RETRIES.labels(SERVICE).inc(), service=SERVICE
    )
    warehouse.migrate(session.con)
    consumer = kafka_clients.service_consumer(common, own)
    producer = kafka_clients.producer(common.bootstrap_servers)
    bucket = Bucket.open(common.bucket_url, common.gcs_endpoint)
    handler = LoaderHandler(
        session,
        producer,
        topics,
        own.group_id,
        common.instance_id,
        common.account_key_salt,
        registry_for(common),
        IdSnapshots(bucket, topics.validated),
        bucket,
        own.max_partitions_per_batch,
    )
    policy = BatchPolicy.of(own, common)
    loop = ConsumerLoop(consumer, [topics.validated], handler, policy, hb, stop)
    return lag_metrics.watch(SERVICE, loop)


def main() -> None:
    """`headrace run loader`: the loader's consumer loop with health and metrics."""
    run_consumer_service(SERVICE, LoaderSettings, build)
