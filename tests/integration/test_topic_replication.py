"""Topics get the replication their cluster can keep: 3 copies / 2 in sync, or 1 / 1."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ConfigEntry,
    ConfigResource,
    ResourceType,
    TopicMetadata,
)

from headrace.dev.infra.kafka_cluster import KafkaCluster
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import (
    ERROR_MESSAGE_MAX_BYTES,
    Replication,
    Topics,
    cluster_replication,
    fewer_replicas,
)
from headrace.kafka.topics import ensure_pipeline_topics as ensure


def topic_config(admin: AdminClient, topic: str) -> dict[str, ConfigEntry]:
    """The topic's configuration, asked again while the broker asked does not know it yet."""
    deadline = time.monotonic() + 10
    while True:
        (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
        try:
            config: dict[str, ConfigEntry] = future.result()
            return config
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def known_topics(admin: AdminClient, names: set[str]) -> dict[str, TopicMetadata]:
    """The metadata once it lists `names`: each broker learns of a new topic on its own time."""
    deadline = time.monotonic() + 10
    while True:
        topics: dict[str, TopicMetadata] = admin.list_topics(timeout=10).topics
        if names <= topics.keys() or time.monotonic() > deadline:
            return topics
        time.sleep(0.2)


def created_replication(admin: AdminClient) -> dict[str, tuple[frozenset[int], str | None]]:
    """Per topic of a new pipeline: the replica counts of its partitions and its min.insync."""
    topics = Topics(f"rf-{uuid.uuid4().hex[:8]}")
    assert ensure(admin, topics, replication=cluster_replication(admin))
    metadata = known_topics(admin, set(topics.partitions()))
    configs = {t: topic_config(admin, t) for t in topics.partitions()}
    assert configs[topics.error]["max.message.bytes"].value == str(ERROR_MESSAGE_MAX_BYTES)
    return {
        name: (
            frozenset(len(p.replicas) for p in metadata[name].partitions.values()),
            configs[name]["min.insync.replicas"].value,
        )
        for name in topics.partitions()
    }


def test_a_single_broker_gets_one_copy_one_in_sync(bootstrap: str) -> None:
    admin = kafka_clients.admin(bootstrap)
    if len(admin.list_topics(timeout=10).brokers) != 1:
        pytest.skip("HEADRACE_TEST_BOOTSTRAP names a cluster, not a single broker")
    assert set(created_replication(admin).values()) == {(frozenset({1}), "1")}


def test_a_three_node_cluster_gets_three_copies_two_in_sync(kafka_cluster: KafkaCluster) -> None:
    admin = kafka_clients.admin(kafka_cluster.bootstrap)
    assert set(created_replication(admin).values()) == {(frozenset({3}), "2")}


def test_topics_made_with_fewer_copies_are_found(kafka_cluster: KafkaCluster) -> None:
    admin = kafka_clients.admin(kafka_cluster.bootstrap)
    topics = Topics(f"few-{uuid.uuid4().hex[:8]}")
    ensure(admin, topics, replication=Replication(1, 1))
    known_topics(admin, set(topics.partitions()))
    assert not ensure(admin, topics)  # they exist: left as they are
    assert fewer_replicas(admin, topics.partitions(), 3) == dict.fromkeys(topics.partitions(), 1)
    assert fewer_replicas(admin, topics.partitions(), 1) == {}
