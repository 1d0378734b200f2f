"""The stager's Kafka side: files are written durably first, offsets committed after."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from headrace import kafka_clients, metrics
from headrace.bucket import Bucket
from headrace.consumer_loop import BatchPolicy, ConsumerLoop, StopFlag, commit_offsets, position
from headrace.crash_points import crash_point
from headrace.schema_registry import default_registry
from headrace.service_http import Heartbeat
from headrace.settings import CommonSettings
from headrace.topics import Topics
from headrace.wire_format import WireFormatError
from services.stager.config import StagerSettings
from services.stager.core import Record, raw_line, stage, text_or_base64

log = logging.getLogger(__name__)
SERVICE = "stager"


def error_line(r: Record) -> dict[str, Any]:
    """An error-zone line: the envelope as JSON, the original bytes readable where possible."""
    try:
        env = default_registry().decode(r.value or b"")
    except (WireFormatError, LookupError, ValueError, EOFError):
        return {**raw_line(r), "undecodable_envelope": True}
    original = env.pop("original")
    env["rejected_at"] = env["rejected_at"].isoformat()
    return {**env, **text_or_base64(original, "original"), "error_offset": r.offset}


def to_record(m: Message) -> Record:
    topic, partition, offset = position(m)
    consumed = m.headers() or []
    assert isinstance(consumed, list)  # consumed messages carry a list, never a dict
    headers = [(k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in consumed]
    return Record(
        topic,
        partition,
        offset,
        m.timestamp()[1],
        m.key(),
        m.value(),
        headers,
    )


class StagerHandler:
    def __init__(self, bucket: Bucket, topics: Topics) -> None:
        self.bucket = bucket
        self.topics = topics

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start at the committed offsets."""

    def handle(self, consumer: Consumer, messages: list[Message]) -> None:
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            records = [to_record(m) for m in messages]
            raw = [r for r in records if r.topic == self.topics.raw]
            errors = [r for r in records if r.topic == self.topics.error]
            files = stage("raw", raw, raw_line) + stage("error", errors, error_line)
            for f in files:
                self.bucket.write_atomic(f.path, f.data)
                metrics.BYTES_WRITTEN.labels(SERVICE, f.path.split("/")[0]).inc(len(f.data))
                crash_point("stager.after_first_file")
            crash_point("stager.before_commit")
            commit_offsets(consumer, messages)
        for topic, zone in ((self.topics.raw, raw), (self.topics.error, errors)):
            metrics.EVENTS_IN.labels(SERVICE, topic).inc(len(zone))
        metrics.LAST_PROGRESS.labels(SERVICE).set_to_current_time()


def build(
    common: CommonSettings, own: StagerSettings, stop: StopFlag, hb: Heartbeat
) -> ConsumerLoop:
    topics = Topics(common.topic_prefix)
    bucket = Bucket.open(common.bucket_url, common.gcs_endpoint)
    consumer = kafka_clients.consumer(
        common.bootstrap_servers, own.group_id, **own.consumer_overrides()
    )
    policy = BatchPolicy(own.batch_max_messages, own.batch_max_wait_seconds)
    handler = StagerHandler(bucket, topics)
    return ConsumerLoop(consumer, [topics.raw, topics.error], handler, policy, hb, stop)
