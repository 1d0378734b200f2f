"""The pipeline's topics and their creation with explicit partitions and replication."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from headrace.runtime.errors import OperatorError

# The largest message the error topic takes. An envelope carries its event's original bytes plus
# the reasons, so it is larger than the largest raw message (the broker's 1 MiB by default): at
# the broker's own limit, a big event's rejection could never be written, and the validator's
# transaction would fail on it at every retry.
ERROR_MESSAGE_MAX_BYTES = 2 * 1024 * 1024


@dataclass(frozen=True)
class Topics:
    prefix: str

    @property
    def raw(self) -> str:
        return f"{self.prefix}.raw"

    @property
    def validated(self) -> str:
        return f"{self.prefix}.validated"

    @property
    def error(self) -> str:
        return f"{self.prefix}.error"

    @property
    def loaded(self) -> str:
        return f"{self.prefix}.loaded"

    def partitions(self, raw_partitions: int = 6) -> dict[str, int]:
        """Partition count of each topic. validated mirrors raw: the validator keeps partitions."""
        return {
            self.raw: raw_partitions,
            self.validated: raw_partitions,
            self.error: 3,
            self.loaded: 1,
        }

    def configs(self) -> dict[str, dict[str, str]]:
        """Topic settings that differ from the broker's defaults."""
        return {self.error: {"max.message.bytes": str(ERROR_MESSAGE_MAX_BYTES)}}


@dataclass(frozen=True)
class Replication:
    """Copies of each partition, and how many must have a write before it is acknowledged."""

    factor: int
    min_insync: int

    def configs(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync)}


def auto_replication(brokers: int) -> Replication:
    """What "auto" means on a cluster of `brokers`: three copies, two in sync, where there are
    three brokers. With min.insync.replicas 2 an acks=all write lands on two brokers before it
    is acknowledged, so losing any one broker loses no acknowledged event, and producing goes on
    while one is down. On fewer brokers there is no such margin to keep: every broker holds a
    copy and one in sync is enough (2 of 2 would stop every write while either is down).
    """
    factor = max(1, min(brokers, 3))
    return Replication(factor, 2 if factor >= 3 else 1)


Auto = Literal["auto"]


def replication_for(
    brokers: int, factor: int | Auto = "auto", min_insync: int | Auto = "auto"
) -> Replication:
    """The replication of new topics: the settings where given, else `auto_replication`."""
    auto = auto_replication(brokers)
    chosen = Replication(
        auto.factor if factor == "auto" else factor,
        auto.min_insync if min_insync == "auto" else min_insync,
    )
    if chosen.factor > brokers:
        raise OperatorError(
            f"HEADRACE_TOPIC_REPLICATION_FACTOR={chosen.factor} but the cluster has {brokers} "
            "broker(s); lower it or set it to auto"
        )
    if chosen.min_insync > chosen.factor:
        raise OperatorError(
            f"HEADRACE_TOPIC_MIN_INSYNC_REPLICAS={chosen.min_insync} is above the replication "
            f"factor {chosen.factor}: no write could be acknowledged; lower it or set it to auto"
        )
    return chosen


def cluster_replication(
    admin: AdminClient,
    factor: int | Auto = "auto",
    min_insync: int | Auto = "auto",
    timeout: float = 30.0,
) -> Replication:
    """`replication_for` the number of brokers the cluster's metadata lists."""
    brokers = len(admin.list_topics(timeout=timeout).brokers)
    return replication_for(brokers, factor, min_insync)


def ensure_pipeline_topics(
    admin: AdminClient,
    topics: Topics,
    raw_partitions: int = 6,
    replication: Replication | None = None,
) -> list[str]:
    """Create the pipeline's missing topics with their partitions, replication and settings."""
    return ensure_topics(
        admin, topics.partitions(raw_partitions), configs=topics.configs(), replication=replication
    )


def fewer_replicas(admin: AdminClient, names: Iterable[str], factor: int) -> dict[str, int]:
    """Existing topics among `names` with fewer replicas than `factor`, with their count.

    Creating topics never changes one that exists, so topics made on a single broker keep one
    copy after the cluster grows: worth telling whoever runs `headrace topics`.
    """
    topics = admin.list_topics(timeout=30).topics
    found = {
        name: min(len(p.replicas) for p in topics[name].partitions.values())
        for name in names
        if name in topics and topics[name].partitions
    }
    return {name: n for name, n in found.items() if n < factor}


def ensure_topics(
    admin: AdminClient,
    wanted: dict[str, int],
    timeout: float = 30.0,
    configs: Mapping[str, dict[str, str]] | None = None,
    replication: Replication | None = None,
) -> list[str]:
    """Create the missing topics; return the names created. Existing topics are left as they are.

    Without `replication`, the cluster's "auto" one (`cluster_replication`).
    """
    metadata = admin.list_topics(timeout=timeout)
    existing = set(metadata.topics)
    chosen = replication or replication_for(len(metadata.brokers))
    settings = configs or {}
    new = [
        NewTopic(name, count, chosen.factor, config={**chosen.configs(), **settings.get(name, {})})
        for name, count in wanted.items()
        if name not in existing
    ]
    if not new:
        return []
    created = []
    for name, future in admin.create_topics(new, operation_timeout=timeout).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            # Made meanwhile, or made earlier and not yet known to the broker that was asked.
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    _wait_for_leaders(admin, {t.topic for t in new}, timeout)
    return created


def _wait_for_leaders(admin: AdminClient, names: set[str], timeout: float) -> None:
    """Wait until the metadata shows every partition of `names` with a leader.

    The controller acknowledges a creation before the brokers have it: on a cluster, a client
    asking another broker a moment later was told the topic does not exist.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=timeout).topics
        if all(
            name in topics
            and topics[name].error is None
            and all(p.leader >= 0 for p in topics[name].partitions.values())
            for name in names
        ):
            return
        time.sleep(0.1)
    raise KafkaException(f"topics {sorted(names)} have no leader after {timeout:.0f}s")
