"""Factories for confluent-kafka clients with the settings every service needs.

Consumer settings: librdkafka's default fetch-queue backoff (1000 ms) leaves a
batch consumer idle most of the time, so it is lowered and the local queue is made large.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from headrace.runtime.errors import OperatorError
from headrace.runtime.settings import CommonSettings, ConsumerServiceSettings

BATCH_CONSUMER_DEFAULTS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
    "partition.assignment.strategy": "cooperative-sticky",
    "fetch.queue.backoff.ms": 10,
    "queued.min.messages": 200_000,
    "fetch.min.bytes": 1,
    "max.poll.interval.ms": 300_000,
    "session.timeout.ms": 45_000,
}

PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 20,
    "compression.type": "lz4",
    "batch.size": 1_000_000,
}


def admin(bootstrap: str, **overrides: Any) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, **overrides})


def consumer(bootstrap: str, group_id: str, **overrides: Any) -> Consumer:
    conf = {"bootstrap.servers": bootstrap, "group.id": group_id, **BATCH_CONSUMER_DEFAULTS}
    conf.update(overrides)
    return Consumer(conf)


def service_consumer(common: CommonSettings, own: ConsumerServiceSettings) -> Consumer:
    """A service's consumer, its prefetch queue capped at a quarter of the memory budget.

    librdkafka prefetches until `queued.max.messages.kbytes` (64 MB by default, per consumer)
    whatever the batch size; on a backlog that queue, not the batch, is what grows. It also keeps
    fetching a partition while it holds fewer than `queued.min.messages` of it, and that cap
    binds first: at 200,000 per partition a validator draining 1M events peaked at 405 MiB, at
    the service default (`prefetch_messages`, 5,000) at 252 MiB, as fast (docs/performance.md).
    """
    return consumer(
        common.bootstrap_servers,
        own.group_id,
        **{"queued.max.messages.kbytes": common.memory_budget_mb * 1024 // 4},
        **own.consumer_overrides(),
    )


def producer(bootstrap: str, **overrides: Any) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, **PRODUCER_DEFAULTS, **overrides})


def budgeted_producer(common: CommonSettings, **overrides: Any) -> Producer:
    """A producer whose send queue (1 GB by default) is capped at a quarter of the budget.

    A full queue makes produce() raise BufferError, which the callers answer by polling until
    the broker has taken some: backpressure instead of growth.
    """
    cap = {"queue.buffering.max.kbytes": common.memory_budget_mb * 1024 // 4}
    return producer(common.bootstrap_servers, **{**cap, **overrides})


def transactional_producer(bootstrap: str, transactional_id: str, **overrides: Any) -> Producer:
    """A producer whose init_transactions() fences any older instance with the same id."""
    p = producer(bootstrap, **{"transactional.id": transactional_id, **overrides})
    p.init_transactions(30)
    return p


def wait_for_broker(bootstrap: str, timeout: float = 10.0) -> None:
    """Fail with an operator message when no broker answers at `bootstrap`."""
    try:
        # log_level 0: the refused connections are expected here; the message below says it all.
        admin(bootstrap, log_level=0).list_topics(timeout=timeout)
    except KafkaException:
        raise OperatorError(
            f"no Kafka broker answers at {bootstrap}; start one with `headrace infra start` "
            "or set HEADRACE_BOOTSTRAP_SERVERS"
        ) from None
