"""The stager's Kafka side: files are written durably first, offsets committed after."""

from __future__ import annotations

import itertools
import logging
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from headrace.codec.registry import Registry, registry_for
from headrace.codec.wire_format import WireFormatError
from headrace.kafka import clients as kafka_clients
from headrace.kafka import lag_metrics
from headrace.kafka.consumer_loop import (
    BatchPolicy,
    ConsumerLoop,
    StopFlag,
    commit_offsets,
    position,
    rewind,
)
from headrace.kafka.topics import Topics
from headrace.lake.bucket import Bucket
from headrace.lake.zone_files import parse_name
from headrace.runtime import metrics
from headrace.runtime.crash_points import crash_point
from headrace.runtime.http import Heartbeat
from headrace.runtime.registry import STAGER
from headrace.runtime.settings import CommonSettings
from headrace.serving.service import run_consumer_service
from services.stager.config import StagerSettings
from services.stager.core import Record, raw_line, stage, text_or_base64

log = logging.getLogger(__name__)
SERVICE = STAGER.name
UNREADABLE_HEADERS = "headrace.unreadable_headers"


def error_line(r: Record, registry: Registry) -> dict[str, Any]:
    """An error-zone line: the envelope as JSON, the original bytes readable where possible.

    A record of the error topic that is not an envelope (another schema, damaged bytes, a
    producer other than headrace's) is kept as the raw record, marked `undecodable_envelope`.
    """
    try:
        env = registry.decode(r.value or b"")
        original = env.pop("original")
        env["rejected_at"] = env["rejected_at"].isoformat()
    except (WireFormatError, LookupError, ValueError, EOFError, TypeError, AttributeError):
        return {**raw_line(r), "undecodable_envelope": True}
    return {**env, **text_or_base64(original, "original"), "error_offset": r.offset}


def to_record(m: Message) -> Record:
    topic, partition, offset = position(m)
    try:
        consumed = m.headers()
    except UnicodeDecodeError:  # a header name that is not UTF-8 (any client may send one)
        consumed = [(UNREADABLE_HEADERS, b"header names are not UTF-8")]
    assert not isinstance(consumed, dict)  # consumed messages carry a list (or None)
    headers = (
        [(k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in consumed]
        if consumed
        else []
    )
    return Record(topic, partition, offset, m.timestamp()[1], m.key(), m.value(), headers)


class StagerHandler:
    def __init__(self, bucket: Bucket, topics: Topics, writer: str, registry: Registry) -> None:
        self.bucket = bucket
        self.registry = registry
        self.topics = topics
        self.writer = writer
        self.zones = {topics.raw: "raw", topics.error: "error"}

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start at the committed offsets, after deleting what crashed writers left beyond them.

        A file at or after a partition's committed offset was written by a batch whose commit
        never happened (the writer died or was fenced): it is not part of the zone.
        """
        committed = {
            (tp.topic, tp.partition): tp.offset for tp in consumer.committed(partitions, timeout=30)
        }
        for topic, zone in self.zones.items():
            mine = {p for (t, p) in committed if t == topic}
            if not mine:
                continue
            for path in self.bucket.glob(f"{zone}/date=*/{topic}.p*.jsonl"):
                name = parse_name(path)
                if name and name.partition in mine:
                    start = committed[(topic, name.partition)]
                    if start < 0 or name.first >= start:  # < 0: nothing ever committed
                        log.warning("deleting uncommitted %s", path)
                        self.bucket.delete(path)

    def handle(self, consumer: Consumer, messages: list[Message]) -> None:
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            records = [to_record(m) for m in messages]
            raw = [r for r in records if r.topic == self.topics.raw]
            errors = [r for r in records if r.topic == self.topics.error]
            files = itertools.chain(
                stage("raw", raw, raw_line, self.writer),
                stage("error", errors, lambda r: error_line(r, self.registry), self.writer),
            )
            written: list[str] = []
            isolated = 0
            for f in files:
                self.bucket.write_atomic(f.path, f.data)
                written.append(f.path)
                isolated += f.isolated
                metrics.zone_written(SERVICE, f.path.split("/")[0], len(f.data), 1, f.records)
                crash_point("stager.after_first_file")
            crash_point("stager.before_commit")
            with metrics.COMMIT_SECONDS.labels(SERVICE).time():
                committed = commit_offsets(consumer, messages)
            if not committed:
                # Refused (fenced after a pause, or mid-rebalance): these files do not count.
                metrics.BATCH_FAILURES.labels(SERVICE).inc()
                for path in written:
                    self.bucket.delete(self.bucket.url(path))
                rewind(consumer, messages)
                return
        for topic, zone in ((self.topics.raw, raw), (self.topics.error, errors)):
            metrics.EVENTS_IN.labels(SERVICE, topic).inc(len(zone))
        metrics.ISOLATED_RECORDS.labels(SERVICE).inc(isolated)
        metrics.LAST_PROGRESS.labels(SERVICE).set_to_current_time()


def build(
    common: CommonSettings, own: StagerSettings, stop: StopFlag, hb: Heartbeat
) -> ConsumerLoop:
    topics = Topics(common.topic_prefix)
    bucket = Bucket.open(common.bucket_url, common.gcs_endpoint)
    consumer = kafka_clients.service_consumer(common, own)
    policy = BatchPolicy.of(own, common)
    handler = StagerHandler(bucket, topics, common.instance_id, registry_for(common))
    loop = ConsumerLoop(consumer, [topics.raw, topics.error], handler, policy, hb, stop)
    return lag_metrics.watch(SERVICE, loop)


def main() -> None:
    """`headrace run stager`: the stager's consumer loop with health and metrics."""
    run_consumer_service(SERVICE, StagerSettings, build)
