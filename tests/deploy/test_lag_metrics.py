"""Consumer lag per partition against a real broker: exact counts, fallbacks, removal on revoke."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import REGISTRY

from headrace.kafka import clients as kafka_clients
from headrace.kafka.lag_metrics import ConsumerLag
from headrace.kafka.topics import ensure_topics

pytestmark = pytest.mark.integration


def lag(service: str, topic: str, partition: int) -> float | None:
    labels = {"service": service, "topic": topic, "partition": str(partition)}
    return REGISTRY.get_sample_value("headrace_consumer_lag_messages", labels)


def consume_exactly(consumer: Consumer, n: int, timeout: float = 30.0) -> None:
    got, deadline = 0, time.monotonic() + timeout
    while got < n:
        assert time.monotonic() < deadline, f"consumed {got} of {n}"
        got += len([m for m in consumer.consume(n - got, 0.5) if m.error() is None])


def refresh_until(meter: ConsumerLag, ready: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        meter.refresh()
        if ready():
            return
        assert time.monotonic() < deadline, "lag not reported in time"
        time.sleep(0.2)


def test_lag_is_high_watermark_minus_position_per_assigned_partition(bootstrap: str) -> None:
    topic, group = f"t-{uuid.uuid4().hex[:10]}.lag", f"g-{uuid.uuid4().hex[:8]}"
    service = f"svc-{uuid.uuid4().hex[:6]}"
    ensure_topics(kafka_clients.admin(bootstrap), {topic: 2})
    producer = kafka_clients.producer(bootstrap)
    for i in range(10):
        producer.produce(topic, b"v%d" % i, partition=0)
    for i in range(4):
        producer.produce(topic, b"w%d" % i, partition=1)
    assert producer.flush(30) == 0

    consumer = kafka_clients.consumer(bootstrap, group)
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        consume_exactly(consumer, 6)
        # Partition 1: assigned, never read, nothing committed -> counted from the low mark.
        consumer.incremental_assign([TopicPartition(topic, 1)])
        meter = ConsumerLag(service, consumer, interval_seconds=0)
        refresh_until(meter, lambda: lag(service, topic, 1) is not None)
        assert lag(service, topic, 0) == 4
        assert lag(service, topic, 1) == 4

        # With a committed offset, a partition not read yet counts from there.
        consumer.commit(offsets=[TopicPartition(topic, 1, 3)], asynchronous=False)
        fresh = ConsumerLag(service, consumer, interval_seconds=0)
        fresh.refresh()
        assert lag(service, topic, 1) == 1

        # A partition that is no longer ours stops being reported.
        consumer.incremental_unassign([TopicPartition(topic, 0)])
        fresh.refresh()
        assert lag(service, topic, 0) is None
        assert lag(service, topic, 1) == 1
        turned = REGISTRY.get_sample_value(
            "headrace_loop_last_turn_timestamp_seconds", {"service": service}
        )
        assert turned is not None and abs(turned - time.time()) < 60
    finally:
        consumer.close()
