"""Consumer lag per partition, measured inside the consuming loop, where it is exact.

lag = high watermark - position, for each partition assigned to this replica. Both numbers are the
consumer's local state: the high watermark from the latest fetch response, the position just after
the last message the loop has received. So a refresh costs no broker round trip (except for a
partition with no fetch response yet, whose high watermark is asked for) and runs on the loop's own
thread (the consumer is never touched from the HTTP thread). The position steps over
transaction markers, so a caught-up consumer of a transactional topic (validated, error) reads 0,
where the group's committed offset, which stops before the last marker, would read 1.

Messages already received into the batch being built are not counted: at most one batch, about one
`batch_max_wait_seconds` of traffic. A partition not consumed from since it was assigned has no
position yet; its lag is counted from the group's committed offset (asked once).

`watch(service, loop)` hooks a refresh (at most once a second) onto the loop's heartbeat, which the
loop beats on every turn; the refresh also exports when the loop last turned, so a process that
still answers scrapes but whose loop is stuck shows. Series of partitions this replica no longer
owns are removed, so two replicas never report the same partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import Gauge

from headrace.kafka.consumer_loop import ConsumerLoop
from headrace.runtime import metrics
from headrace.runtime.http import Heartbeat

log = logging.getLogger(__name__)

CONSUMER_LAG = Gauge(
    "headrace_consumer_lag_messages",
    "Messages on a partition this replica has not consumed yet (high watermark - position).",
    ["service", "topic", "partition"],
)
LOOP_TURN = Gauge(
    "headrace_loop_last_turn_timestamp_seconds",
    "Unix time the service's consuming loop last turned (refreshed at most once a second).",
    ["service"],
)
Key = tuple[str, int]
T = TypeVar("T")
_NOTHING_COMMITTED = -1
# Longest the loop's thread waits for the broker in one refresh (it must keep polling).
_ASK_BUDGET_SECONDS = 0.5


class ConsumerLag:
    """Keeps CONSUMER_LAG current for the partitions assigned to one consumer."""

    def __init__(self, service: str, consumer: Consumer, interval_seconds: float = 1.0) -> None:
        self.service, self.consumer, self.interval_seconds = service, consumer, interval_seconds
        self._next_at = 0.0
        self._reported: set[Key] = set()
        self._start: dict[Key, int] = {}

    def refresh(self) -> None:
        now = time.monotonic()
        if now < self._next_at:
            return
        self._next_at = now + self.interval_seconds
        LOOP_TURN.labels(self.service).set_to_current_time()
        try:
            assignment = self.consumer.assignment()
            assigned = _keys(assignment)
            self._start = {k: v for k, v in self._start.items() if k in assigned}
            lags = self._measure(assignment)
        except KafkaException as exc:  # metrics never stop the loop; next refresh tries again
            log.debug("consumer lag not measured: %s", exc)
            return
        for (topic, partition), lag in lags.items():
            CONSUMER_LAG.labels(self.service, topic, str(partition)).set(lag)
        for topic, partition in self._reported - assigned:
            CONSUMER_LAG.remove(self.service, topic, str(partition))
        # A partition not measured this time keeps its last figure until it is.
        self._reported = (self._reported & assigned) | lags.keys()

    def _measure(self, assignment: list[TopicPartition]) -> dict[Key, int]:
        """Lag of every assigned partition whose numbers are known.

        This runs on the loop's thread, which must keep polling whatever the broker does: the
        numbers come from the last fetch response where there is one, and what has to be asked
        (the marks of a partition not fetched yet, the start of one not read from yet) is asked
        within one short budget per refresh; one still unknown keeps its last figure meanwhile.
        """
        budget = _Budget(time.monotonic() + _ASK_BUDGET_SECONDS)
        positions = self.consumer.position(assignment) if assignment else []
        self._learn_starts([tp for tp in positions if tp.offset < 0], budget)
        lags: dict[Key, int] = {}
        for tp in positions:
            key = (tp.topic, tp.partition)
            marks: tuple[int, int] | None = self.consumer.get_watermark_offsets(tp, cached=True)
            if not marks or marks[1] < 0:
                marks = budget.ask(partial(self.consumer.get_watermark_offsets, tp))
            low, high = marks or (-1, -1)
            # Not read from yet: where it starts, if known (not asked in time: not measured).
            offset = tp.offset if tp.offset >= 0 else self._start.get(key)
            if offset == _NOTHING_COMMITTED:  # auto.offset.reset=earliest starts at the low mark
                offset = low
            if offset is not None and offset >= 0 and high >= 0:
                lags[key] = max(0, high - offset)
        return lags

    def _learn_starts(self, unread: list[TopicPartition], budget: _Budget) -> None:
        """Remember where consumption of partitions not read from yet starts (committed offset)."""
        missing = [
            TopicPartition(tp.topic, tp.partition)
            for tp in unread
            if (tp.topic, tp.partition) not in self._start
        ]
        if missing:
            for tp in budget.ask(partial(self.consumer.committed, missing)) or []:
                self._start[(tp.topic, tp.partition)] = max(tp.offset, _NOTHING_COMMITTED)


@dataclass
class _Budget:
    until: float

    def ask(self, call: Callable[[float], T]) -> T | None:
        """`call(timeout)` within what is left; None when nothing is left or it fails."""
        left = self.until - time.monotonic()
        if left < 0.01:
            return None
        try:
            return call(left)
        except KafkaException as exc:  # unknown this time; the next refresh asks again
            log.debug("consumer lag: %s", exc)
            return None


class LagRefreshingHeartbeat(Heartbeat):
    """The loop's heartbeat, also refreshing the lag gauges; liveness stays the inner one's."""

    def __init__(self, inner: Heartbeat, lag: ConsumerLag) -> None:
        super().__init__(inner.max_silence)
        self.inner, self.lag = inner, lag

    def beat(self) -> None:
        self.inner.beat()
        self.lag.refresh()

    def alive(self) -> tuple[bool, str]:
        return self.inner.alive()


def watch(service: str, loop: ConsumerLoop) -> ConsumerLoop:
    """Report `loop`'s consumer lag as `service` (and declare the service's zero series)."""
    metrics.declare(service)
    loop.heartbeat = LagRefreshingHeartbeat(loop.heartbeat, ConsumerLag(service, loop.consumer))
    return loop


def _keys(partitions: list[TopicPartition]) -> set[Key]:
    return {(p.topic, p.partition) for p in partitions}
