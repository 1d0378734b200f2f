"""Partition offsets as the broker reports them: a topic's ends, and what was ever appended.

Asked with the admin API's ListOffsets, one request for all the partitions asked. The isolation
level decides which end "latest" is: the high watermark (read_uncommitted, every record ever
appended, transaction markers included) or the last stable offset (read_committed, the end a
read_committed reader can reach).
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import IsolationLevel, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

Key = tuple[str, int]  # (topic, partition)
TIMEOUT_SECONDS = 10


def partitions(admin: AdminClient, topic: str) -> list[int]:
    """The partition numbers of `topic` (none if the broker does not know it)."""
    return sorted(admin.list_topics(topic, timeout=TIMEOUT_SECONDS).topics[topic].partitions)


def offsets(
    admin: AdminClient,
    wanted: Iterable[Key],
    spec: OffsetSpec,
    isolation: IsolationLevel = IsolationLevel.READ_UNCOMMITTED,
) -> dict[Key, int]:
    """Each partition's offset for `spec`: latest, earliest, or the first at a timestamp (-1 if
    no record is at or after it)."""
    asked = {TopicPartition(t, p): spec for t, p in wanted}
    if not asked:
        return {}
    futures = admin.list_offsets(asked, isolation_level=isolation, request_timeout=TIMEOUT_SECONDS)
    return {(tp.topic, tp.partition): f.result().offset for tp, f in futures.items()}


def topic_offsets(
    admin: AdminClient,
    topic: str,
    spec: OffsetSpec,
    isolation: IsolationLevel = IsolationLevel.READ_UNCOMMITTED,
) -> dict[int, int]:
    """`offsets` of every partition of `topic`, by partition number."""
    found = offsets(admin, [(topic, p) for p in partitions(admin, topic)], spec, isolation)
    return {p: o for (_, p), o in found.items()}


def appended(admin: AdminClient, topic: str) -> int:
    """Messages ever appended to `topic`: the sum of its partitions' high watermarks, which
    retention never lowers."""
    return sum(topic_offsets(admin, topic, OffsetSpec.latest()).values())
