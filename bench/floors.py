"""Floors: the bare confluent-kafka client moving the same bytes as a stage, with no logic.

A stage cannot beat the client it is built on, so its throughput over the floor's says how much
its own work costs. Each floor runs on the same broker and data, with the same client settings
(headrace.kafka.clients: fetch.queue.backoff.ms 10, large queued.min.messages, lz4, linger 20 ms,
idempotence), the same batch sizes and the same guarantees as the stage it bounds:

- producer: read the file's lines and produce them (no key extraction, no headers);
- validator: consume raw and produce each value unchanged, one Kafka transaction per batch with
  the consumed offsets in it (the same exactly-once mechanism, no decoding or checks);
- loader: consume validated and write each batch's values as one zstd Parquet file, then commit
  (no Avro decoding, no warehouse);
- stager: consume raw + error and write each (topic, partition) of a batch as one fsynced JSON
  lines file of the values, then commit (no envelope decoding, no per-record JSON).

Timing starts when the first messages arrive, as the services' starts when their partitions are
assigned (bench/service_process.py). The floors run in the benchmark's own process, so their CPU
time is that process's (time.process_time, all threads).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from bench.service_process import Drained
from headrace.kafka import clients as kafka_clients
from headrace.kafka.consumer_loop import committed_offsets, position

IDLE_TIMEOUT = 60.0


def produce_file(bootstrap: str, path: Path, topic: str) -> Drained:
    producer = kafka_clients.producer(bootstrap)
    sent = 0
    started, cpu_started = time.monotonic(), time.process_time()
    with path.open("rb") as f:
        for line in f:
            value = line.rstrip(b"\n")
            while True:
                try:
                    producer.produce(topic, value)
                    break
                except BufferError:  # local queue full: let librdkafka drain it
                    producer.poll(0.05)
            sent += 1
            if sent % 10_000 == 0:
                producer.poll(0)
    remaining = producer.flush(120)
    if remaining:
        raise RuntimeError(f"floor producer: {remaining} messages not acknowledged")
    return Drained(sent, time.monotonic() - started, time.process_time() - cpu_started)


def drain_batches(
    consumer: Consumer,
    topics: list[str],
    expected: int,
    max_messages: int,
    max_wait: float,
    handle: Callable[[list[Message]], None],
) -> Drained:
    """Consume until `expected` messages were handled, in batches cut like ConsumerLoop's.

    The clock starts when the partitions are assigned, as the services' does (the group join is
    start-up; fetching is not: a consumer prefetches while it waits for its first batch).
    """
    clock: list[float] = []

    def on_assign(c: Consumer, partitions: list[TopicPartition]) -> None:
        if not clock:
            clock.extend((time.monotonic(), time.process_time()))

    consumer.subscribe(topics, on_assign=on_assign)
    pending: list[Message] = []
    done, batch_started = 0, 0.0
    last_seen = time.monotonic()
    while done < expected:
        got = consumer.consume(max_messages - len(pending), 0.2)
        now = time.monotonic()
        if got:
            last_seen = now
            if not pending:
                batch_started = now
        elif now - last_seen > IDLE_TIMEOUT:
            raise TimeoutError(f"floor: {done:,} of {expected:,} messages, then nothing")
        for m in got:
            err = m.error()
            if err is None:
                pending.append(m)
            elif err.code() != KafkaError._PARTITION_EOF:
                raise RuntimeError(f"floor consumer: {err}")
        full = len(pending) >= max_messages
        last = done + len(pending) >= expected
        if pending and (full or last or now - batch_started >= max_wait):
            handle(pending)
            done += len(pending)
            pending = []
    consumer.close()
    return Drained(done, time.monotonic() - clock[0], time.process_time() - clock[1])


def transactional_copy(
    bootstrap: str, source: str, sink: str, group: str, expected: int, max_messages: int = 10_000
) -> Drained:
    consumer = kafka_clients.consumer(bootstrap, group)
    producer = kafka_clients.transactional_producer(bootstrap, f"{group}-txn")

    def handle(batch: list[Message]) -> None:
        producer.begin_transaction()
        for m in batch:
            _, partition, _ = position(m)
            producer.produce(sink, m.value(), m.key(), partition=partition)
        producer.send_offsets_to_transaction(
            committed_offsets(batch), consumer.consumer_group_metadata(), 30
        )
        producer.commit_transaction(30)

    return drain_batches(consumer, [source], expected, max_messages, 0.2, handle)


def to_parquet(
    bootstrap: str, source: str, out: Path, group: str, expected: int, max_messages: int = 100_000
) -> Drained:
    out.mkdir(parents=True, exist_ok=True)
    consumer = kafka_clients.consumer(bootstrap, group)
    files = 0

    def handle(batch: list[Message]) -> None:
        nonlocal files
        table = pa.table(
            {
                "partition": pa.array([m.partition() for m in batch], pa.int32()),
                "offset": pa.array([m.offset() for m in batch], pa.int64()),
                "value": pa.array([m.value() for m in batch], pa.binary()),
            }
        )
        pq.write_table(table, out / f"batch-{files:06d}.parquet", compression="zstd")
        files += 1
        consumer.commit(offsets=committed_offsets(batch), asynchronous=False)

    return drain_batches(consumer, [source], expected, max_messages, 1.0, handle)


def to_jsonl(
    bootstrap: str,
    sources: list[str],
    out: Path,
    group: str,
    expected: int,
    max_messages: int = 50_000,
) -> Drained:
    out.mkdir(parents=True, exist_ok=True)
    consumer = kafka_clients.consumer(bootstrap, group)
    files = 0

    def handle(batch: list[Message]) -> None:
        nonlocal files
        groups: dict[tuple[str | None, int | None], list[bytes]] = {}
        for m in batch:
            groups.setdefault((m.topic(), m.partition()), []).append(m.value() or b"")
        for values in groups.values():
            path = out / f"file-{files:07d}.jsonl"
            with path.open("wb") as f:
                f.write(b"\n".join(values) + b"\n")
                f.flush()
                os.fsync(f.fileno())
            files += 1
        consumer.commit(offsets=committed_offsets(batch), asynchronous=False)

    return drain_batches(consumer, sources, expected, max_messages, 1.0, handle)
