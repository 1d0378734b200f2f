"""Consumer-group lag seen from outside the group: is every event on a topic processed?

`lag_metrics` measures lag inside a consumer, from its own position. This module answers the same
question for a whole group from anywhere (the fault suite's liveness check I7, `headrace lag`),
from the offsets the group made durable: its committed offsets, or for the loader the offsets
ledger in the warehouse, which is the loader's truth (its Kafka commit only follows it).

Offsets alone cannot say "nothing left" on a transactional topic: the group commits past the last
record of a transaction, but the commit marker after it also takes an offset, and an aborted
transaction leaves records no read_committed reader will ever see. So a partition whose durable
offset is below the last stable offset is probed: a read_committed consumer (no group, nothing
committed) is assigned at that offset and reads until a visible record or the partition's end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

from confluent_kafka import (
    OFFSET_BEGINNING,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec

from headrace.kafka import clients as kafka_clients
from headrace.kafka.offsets import Key, offsets

# The group's coordinator is moving or loading: the answer comes if asked again.
_NOT_YET = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
}


def committed(bootstrap: str, group: str, topics: list[str]) -> dict[Key, int]:
    """The group's committed offset per partition of `topics` (negative: none committed).

    Asked through a consumer of the group that never subscribes (so never joins it), not the
    admin API: librdkafka's admin OffsetFetch crashes the process when the group's coordinator
    is not ready yet (confluent-kafka-python #1982), which is just when a fresh broker is asked.
    """
    reader = kafka_clients.consumer(bootstrap, group)
    try:
        metadata = reader.list_topics(timeout=10).topics
        wanted = [TopicPartition(t, p) for t in topics for p in metadata[t].partitions]
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = reader.committed(wanted, timeout=10)
                return {(tp.topic, tp.partition): tp.offset for tp in answer}
            except KafkaException as exc:  # e.g. NOT_COORDINATOR while the broker starts
                if exc.args[0].code() not in _NOT_YET or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        reader.close()


def pending(bootstrap: str, positions: Mapping[Key, int], timeout: float = 10.0) -> dict[Key, int]:
    """Per partition, an upper bound of the visible records at or after `positions` (0: none).

    A negative position (nothing committed yet) counts from the beginning of the partition.
    """
    # The last stable offsets: the ends a read_committed reader can reach.
    admin = kafka_clients.admin(bootstrap)
    ends = offsets(admin, positions, OffsetSpec.latest(), IsolationLevel.READ_COMMITTED)
    starts = {k: max(o, 0) for k, o in positions.items()}
    behind = {k: o for k, o in starts.items() if ends[k] > o}
    lag = {k: 0 for k in positions}
    for key in _visible(bootstrap, behind, timeout):
        lag[key] = ends[key] - behind[key]
    return lag


def group_pending(bootstrap: str, group: str, topics: list[str]) -> dict[Key, int]:
    """`pending` from the group's committed offsets."""
    return pending(bootstrap, committed(bootstrap, group, topics))


def _visible(bootstrap: str, starts: dict[Key, int], timeout: float) -> set[Key]:
    """The partitions with a read_committed-visible record at or after their start offset."""
    if not starts:
        return set()
    probe = kafka_clients.consumer(
        bootstrap,
        f"headrace-lag-probe-{uuid.uuid4().hex[:8]}",  # assign() only: never joins or commits
        **{"enable.partition.eof": True, "queued.min.messages": 1000},
    )
    try:
        probe.incremental_assign(
            [TopicPartition(t, p, o if o > 0 else OFFSET_BEGINNING) for (t, p), o in starts.items()]
        )
        open_, seen = set(starts), set()
        deadline = time.monotonic() + timeout
        while open_ and time.monotonic() < deadline:
            for m in probe.consume(500, timeout=0.5):
                key = (m.topic() or "", m.partition() or 0)
                if key not in open_:
                    continue
                error = m.error()
                if error is None:
                    seen.add(key)
                elif error.code() != KafkaError._PARTITION_EOF:
                    continue  # transient fetch errors: the deadline bounds the wait
                open_.discard(key)
                probe.incremental_unassign([TopicPartition(*key)])
        return seen | open_  # not answered in time: assume behind (never a false "caught up")
    finally:
        probe.close()
