"""Group lag from outside on a real broker: transaction markers and aborted records are not work."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import TopicPartition

from headrace.kafka import clients as kafka_clients
from headrace.kafka import group_lag
from headrace.kafka.topics import ensure_topics

pytestmark = pytest.mark.integration


def _transaction(bootstrap: str, topic: str, n: int, *, commit: bool) -> None:
    producer = kafka_clients.transactional_producer(bootstrap, f"tx-{uuid.uuid4().hex[:8]}")
    producer.begin_transaction()
    for i in range(n):
        producer.produce(topic, f"event {i}".encode(), partition=0)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.flush(30)
        producer.abort_transaction(30)


def _commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    consumer = kafka_clients.consumer(bootstrap, group)
    consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    consumer.close()


def test_markers_and_aborted_records_are_not_lag(bootstrap: str) -> None:
    topic, group = f"lag-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_clients.admin(bootstrap), {topic: 1})
    key = (topic, 0)

    _transaction(bootstrap, topic, 5, commit=True)  # offsets 0-4, marker at 5
    # Nothing committed yet: all five records are pending.
    assert group_lag.group_pending(bootstrap, group, [topic]) == {key: 6}

    _commit(bootstrap, group, topic, 3)  # two visible records left
    assert group_lag.group_pending(bootstrap, group, [topic])[key] > 0

    _commit(bootstrap, group, topic, 5)  # past the last record, before the marker
    assert group_lag.group_pending(bootstrap, group, [topic]) == {key: 0}

    _transaction(bootstrap, topic, 4, commit=False)  # offsets 6-9 aborted, marker at 10
    assert group_lag.group_pending(bootstrap, group, [topic]) == {key: 0}

    _transaction(bootstrap, topic, 2, commit=True)  # offsets 11-12 visible, marker at 13
    assert group_lag.group_pending(bootstrap, group, [topic]) == {key: 14 - 5}
    assert group_lag.pending(bootstrap, {key: 13}) == {key: 0}
