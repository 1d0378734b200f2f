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

from confluent_kafka import Consumer, KafkaException, TopicPartition
from prometheus_client import Gauge

from headrace import metrics
from headrace.consumer_loop import ConsumerLoop
from headrace.service_http import Heartbeat

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
            lags = self._measure()
        except KafkaException as exc:  # metrics never stop the loop; next refresh tries again
            log.debug("consumer lag not measured: %s", exc)
            return
        for (topic, partition), lag in lags.items():
            CONSUMER_LAG.labels(self.service, topic, str(partition)).set(lag)
        for topic, partition in self._reported - lags.keys():
            CONSUMER_LAG.remove(self.service, topic, str(partition))
        self._reported = set(lags)

    def _measure(self) -> dict[Key, int]:
        assigned = self.consumer.assignment()
        self._start = {k: v for k, v in self._start.items() if k in _keys(assigned)}
        lags: dict[Key, int] = {}
        for tp in self.consumer.position(assigned) if assigned else []:
            cached = self.consumer.get_watermark_offsets(tp, cached=True)
            if cached and cached[1] >= 0:
                high = cached[1]
            else:  # no fetch response for it yet (just assigned): ask the broker once
                asked = self.consumer.get_watermark_offsets(tp, timeout=2)
                high = asked[1] if asked else -1
            offset = tp.offset if tp.offset >= 0 else self._start_offset(tp)
            if high >= 0 and offset >= 0:
                lags[(tp.topic, tp.partition)] = max(0, high - offset)
        return lags

    def _start_offset(self, tp: TopicPartition) -> int:
        """Where consumption of a partition not read from yet will start (-1 if unknown yet)."""
        key = (tp.topic, tp.partition)
        if key not in self._start:
            part = TopicPartition(tp.topic, tp.partition)
            committed = self.consumer.committed([part], timeout=2)[0].offset
            if committed < 0:  # none committed: auto.offset.reset=earliest starts at the low mark
                watermarks = self.consumer.get_watermark_offsets(part, timeout=2)
                if not watermarks:
                    return -1
                committed = watermarks[0]
            self._start[key] = committed
        return self._start[key]


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
