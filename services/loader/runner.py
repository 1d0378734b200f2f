"""The loader's Kafka and warehouse side.

One DuckLake transaction per micro-batch holds the fact rows, new dimension rows, duplicates, the
load_batch lineage row and the offsets ledger entries. On assignment the consumer seeks to the
ledger, so a crash anywhere before COMMIT replays the batch and a crash after it replays nothing.
Rows at offsets the ledger already covers (another instance loaded them while this one was paused)
are dropped inside the transaction. The Kafka commit afterwards only keeps lag metrics honest.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from headrace import kafka_clients, lag_metrics, metrics, warehouse, warehouse_metrics
from headrace.bucket import Bucket
from headrace.consumer_loop import BatchPolicy, ConsumerLoop, StopFlag, commit_offsets
from headrace.crash_points import crash_point
from headrace.pipeline_lag import ledger_offsets
from headrace.schema_registry import Registry, registry_for
from headrace.service_http import Heartbeat
from headrace.settings import CommonSettings
from headrace.topics import Topics
from services.loader.config import LoaderSettings
from services.loader.core import (
    LAND_SQL,
    STAGE_SQL,
    decode_batch,
    newest_event_time,
    offset_ranges,
    unloaded,
)
from services.loader.id_snapshots import IdSnapshots
from services.loader.seen_ids import SeenIds

log = logging.getLogger(__name__)
SERVICE = "loader"
MANIFEST_SCHEMA = "load_manifest.v1.avsc"


def batch_files(con: duckdb.DuckDBPyConnection, batch_id: str) -> list[str]:
    """Clean-zone files (as <table>/<path>) of the snapshot committed with `batch_id`."""
    meta = f"__ducklake_metadata_{warehouse.LAKE}"
    rows = con.execute(
        f"""SELECT t.table_name || '/' || df.path FROM {meta}.ducklake_data_file df
            JOIN {meta}.ducklake_table t USING (table_id)
            JOIN {meta}.ducklake_snapshot_changes c ON df.begin_snapshot = c.snapshot_id
            WHERE c.commit_message = ? AND t.end_snapshot IS NULL ORDER BY 1""",
        [batch_id],
    ).fetchall()
    return [r[0] for r in rows]


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
    ) -> None:
        self.session, self.producer, self.topics = session, producer, topics
        self.group_id, self.instance, self.salt = group_id, instance, salt
        self.registry = registry
        self.seen = SeenIds(topics.validated, snapshots)

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Revoked partitions left the assignment before this call; their ids are dropped.
        self.seen.keep_only([p.partition for p in consumer.assignment() + partitions])
        # Read without waiting for a writer's turn: this runs in the rebalance callback.
        ledger = self.session.read(self._ledger)
        for p in partitions:
            if p.partition in ledger:
                p.offset = ledger[p.partition]
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
            batch = decode_batch(
                self.topics.validated,
                [m.value() or b"" for m in messages],
                [m.partition() for m in messages],
                [m.offset() for m in messages],
                [m.timestamp()[1] for m in messages],
                self.registry.definition,
            )
            manifest = self.load(batch, batch_id)
            crash_point("loader.after_commit")
            if manifest is not None:
                # Counted after COMMIT: the transaction above may have run more than once.
                metrics.EVENTS_OUT.labels(SERVICE, "transaction_fact").inc(manifest["rows"])
                metrics.EVENTS_REJECTED.labels(SERVICE, "DUPLICATE").inc(manifest["duplicates"])
                manifest["files"] = batch_files(self.session.con, batch_id)
                warehouse_metrics.batch_loaded(
                    self.session.con, SERVICE, batch_id, newest_event_time(batch)
                )
                self._announce(manifest)
            crash_point("loader.after_manifest")
            commit_offsets(consumer, messages)
            self.seen.save_grown()
        metrics.EVENTS_IN.labels(SERVICE, self.topics.validated).inc(len(messages))
        metrics.LAST_PROGRESS.labels(SERVICE).set_to_current_time()

    def load(self, batch: pa.Table, batch_id: str) -> dict[str, Any] | None:
        """One warehouse transaction for the batch; its manifest, or None if nothing was new."""
        met = pc.unique(batch.column("source_partition")).to_pylist()
        if self.seen.missing(met):
            # A partition met for the first time has its ids read from every fact file (a minute
            # on a large warehouse in a slow bucket). Read them before the writers' turn, so the
            # other writers need not wait; the transaction below then reads only what another
            # loader committed since.
            self.session.read(lambda con: self.seen.sync(con, met, self._ledger(con)))
        landed = self.session.transact(lambda con: self._land(con, batch, batch_id))
        metrics.commit_done(SERVICE)
        if landed is None:
            return None
        manifest, partitions, ids = landed
        # Only now are the batch's ids in the fact table for every later snapshot.
        self.seen.committed(
            partitions, ids, {r["partition"]: r["last_offset"] + 1 for r in manifest["ranges"]}
        )
        return manifest

    def _land(
        self,
        con: duckdb.DuckDBPyConnection,
        batch: pa.Table,
        batch_id: str,
    ) -> tuple[dict[str, Any], npt.NDArray[np.int32], npt.NDArray[np.int64]] | None:
        """The batch's warehouse writes: its manifest and its rows' partitions and ids, or None."""
        con.execute(f"CALL {warehouse.LAKE}.set_commit_message('headrace-loader', ?)", [batch_id])
        ledger = self._ledger(con)
        fresh = unloaded(batch, ledger)
        if fresh.num_rows < batch.num_rows:
            log.warning(
                "%d events already loaded by another instance; skipped",
                batch.num_rows - fresh.num_rows,
            )
        partitions = fresh.column("source_partition").to_numpy()
        self.seen.sync(con, partitions, ledger)
        if not fresh.num_rows:
            return None
        ids = fresh.column("transaction_id").to_numpy()
        con.register(
            "batch",
            fresh.append_column("already_loaded", pa.array(self.seen.loaded(partitions, ids))),
        )
        now = datetime.now(UTC)
        params = {"salt": self.salt, "batch_id": batch_id, "load_ts": now}
        for sql in STAGE_SQL:
            con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
        for sql in LAND_SQL:
            con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
        ranges = offset_ranges(fresh)
        for r in ranges:
            con.execute(
                "INSERT INTO offsets_ledger VALUES (?, ?, ?, ?, ?)",
                [self.group_id, r["topic"], r["partition"], r["last_offset"] + 1, batch_id],
            )
        rows, days = con.execute(
            "SELECT count(*), coalesce(list(DISTINCT time_id), []) FROM fresh"
        ).fetchone()  # type: ignore[misc]
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
        con.unregister("batch")
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
        }
        return manifest, partitions, ids

    def _ledger(self, con: duckdb.DuckDBPyConnection) -> dict[int, int]:
        """This group's next offset to load per partition of validated, as the ledger holds it."""
        return ledger_offsets(con, self.group_id, self.topics.validated)

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
        common, on_retry=lambda: metrics.BATCH_RETRIES.labels(SERVICE).inc()
    )
    warehouse.migrate(session.con)
    consumer = kafka_clients.service_consumer(common, own)
    producer = kafka_clients.producer(common.bootstrap_servers)
    handler = LoaderHandler(
        session,
        producer,
        topics,
        own.group_id,
        common.instance_id,
        common.account_key_salt,
        registry_for(common),
        IdSnapshots(Bucket.open(common.bucket_url, common.gcs_endpoint), topics.validated),
    )
    policy = BatchPolicy.of(own, common)
    loop = ConsumerLoop(consumer, [topics.validated], handler, policy, hb, stop)
    return lag_metrics.watch(SERVICE, loop)
