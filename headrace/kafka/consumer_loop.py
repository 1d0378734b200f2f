"""The batch poll loop every consuming service runs: consume, hand a batch over, repeat.

The service owns what a batch means (process, make durable, commit). The loop owns polling with
short timeouts (so SIGTERM is honoured), cutting batches, the heartbeat, and the assignment that
readiness reports. Revoked partitions are flushed before the revoke completes, so the next owner
starts exactly where this one stopped; lost partitions are dropped without any commit.

A batch is handled on a worker thread while the loop's thread keeps polling with its partitions
paused: a batch may take longer than max.poll.interval.ms (uploads to a slow bucket), and a
member that stops polling that long is evicted, its commit refused and its batch redone by the
next owner, which can be just as slow: a livelock. Polling keeps the membership; pausing means
the polls fetch nothing while the batch is in hand.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from headrace.kafka.batch_worker import BatchWorker
from headrace.runtime.http import Heartbeat
from headrace.runtime.settings import CommonSettings, ConsumerServiceSettings

log = logging.getLogger(__name__)


class BatchHandler(Protocol):
    def handle(self, consumer: Consumer, messages: list[Message]) -> None:
        """Process a batch, make its results durable, then commit its offsets."""

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Set each partition's start offset in place (or leave it at the committed offset)."""


@dataclass
class BatchPolicy:
    """A batch is cut at whichever comes first: `max_messages`, `max_bytes` of values, a record
    timestamp span over `max_span_ms` (0: none), or `max_wait_seconds` after its first message,
    so a quiet partition still flushes. The message that would break a limit starts the next
    batch, so a batch never exceeds one: that and librdkafka's capped prefetch queue bound memory.
    """

    max_messages: int = 10_000
    max_wait_seconds: float = 0.5
    poll_timeout_seconds: float = 0.2
    max_bytes: int = 32 << 20
    max_span_ms: int = 0
    # A batch still in hand after this long counts as stuck: the loop stops beating its heartbeat,
    # so the watchdog ends the process and the supervisor restarts it.
    max_handle_seconds: float = 300.0
    # A batch in hand this long gets its partitions paused and the loop polling (see `_flush`).
    pause_after_seconds: float = 1.0

    @classmethod
    def of(cls, own: ConsumerServiceSettings, common: CommonSettings) -> BatchPolicy:
        return cls(
            max_messages=own.batch_max_messages,
            max_wait_seconds=own.batch_max_wait_seconds,
            max_bytes=own.batch_max_bytes or common.memory_budget_mb * (1 << 20) // 8,
            max_span_ms=int(own.batch_max_span_seconds * 1000),
            max_handle_seconds=own.batch_max_handle_seconds,
            # A quarter of the poll interval leaves room to spare before eviction, and most
            # batches never pay for a pause (resuming fetches the dropped prefetch again).
            pause_after_seconds=own.max_poll_interval_ms / 4000,
        )


@dataclass
class _Batch:
    """The batch being filled, with what its limits are measured on."""

    messages: list[Message] = field(default_factory=list)
    nbytes: int = 0
    first_ts: int = 0
    last_ts: int = 0
    started_at: float = 0.0

    def offer(self, m: Message, policy: BatchPolicy) -> bool:
        """Add `m`, unless it would break one of the policy's limits: then False, cut first.

        An empty batch takes any message, so one message larger than a limit still moves.
        """
        size, ts = len(m.value() or b""), m.timestamp()[1]
        if self.messages and (
            len(self.messages) >= policy.max_messages
            or self.nbytes + size > policy.max_bytes
            or (
                policy.max_span_ms > 0
                and max(self.last_ts, ts) - min(self.first_ts, ts) > policy.max_span_ms
            )
        ):
            return False
        if not self.messages:
            self.started_at, self.first_ts, self.last_ts = time.monotonic(), ts, ts
        self.messages.append(m)
        self.nbytes += size
        self.first_ts, self.last_ts = min(self.first_ts, ts), max(self.last_ts, ts)
        return True

    def full(self, policy: BatchPolicy) -> bool:
        return len(self.messages) >= policy.max_messages or self.nbytes >= policy.max_bytes


@dataclass
class StopFlag:
    stopped: bool = False
    reason: str = ""

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.stopped, self.reason = True, signal.Signals(signum).name


_WAIT_STEP_SECONDS = 0.05
# A batch in hand this long is logged, with where its handler is, and again as often after.
_SLOW_BATCH_LOG_SECONDS = 30.0


@dataclass
class ConsumerLoop:
    consumer: Consumer
    topics: list[str]
    handler: BatchHandler
    policy: BatchPolicy
    heartbeat: Heartbeat
    stop: StopFlag = field(default_factory=StopFlag)
    assigned: set[tuple[str, int]] = field(default_factory=set)
    last_batch_at: float = field(default_factory=time.monotonic)
    _batch: _Batch = field(default_factory=_Batch)
    # Messages a poll returned while a batch was in hand (from partitions assigned meanwhile).
    _carry: list[Message] = field(default_factory=list)
    _worker: BatchWorker = field(init=False)
    _slow_logged: int = 0

    def __post_init__(self) -> None:
        self._worker = BatchWorker(self.consumer)

    def ready(self) -> tuple[bool, str]:
        if not self.assigned:
            return False, "no partitions assigned"
        return True, f"{len(self.assigned)} partitions assigned"

    def run(self, idle_exit: Callable[[], bool] | None = None) -> None:
        self.consumer.subscribe(
            self.topics,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        try:
            while not self.stop.stopped:
                self.heartbeat.beat()
                queue, self._carry = self._carry, []
                if queue:  # polled while the last batch was in hand: rewinds may have passed them
                    queue = self._still_ahead(queue)
                room = self.policy.max_messages - len(self._batch.messages)
                got = self.consumer.consume(room, 0 if queue else self.policy.poll_timeout_seconds)
                queue += [m for m in got if not _is_benign_error(m)]
                i = 0
                while i < len(queue):
                    if self._batch.offer(queue[i], self.policy):
                        i += 1
                    else:  # cut before the message that would break a limit
                        self._flush()
                        queue, i = self._still_ahead(queue[i:]), 0
                started = self._batch.started_at
                waited = time.monotonic() - started >= self.policy.max_wait_seconds
                if self._batch.messages and (self._batch.full(self.policy) or waited):
                    self._flush()
                if idle_exit is not None and not self._batch.messages and idle_exit():
                    break
            self._flush()
        finally:
            self._worker.stop()
        log.info("stopping (%s)", self.stop.reason or "done")
        self.consumer.close()

    def _flush(self, *, polling: bool = True) -> None:
        """Hand the batch to the handler and wait for it: polling with paused partitions when
        `polling`, just waiting inside a rebalance callback (no poll may nest there)."""
        if not self._batch.messages:
            return
        batch, self._batch = self._batch.messages, _Batch()
        self._worker.start(self.handler.handle, batch)
        self._slow_logged = 0
        paused: list[TopicPartition] = []
        try:
            while not self._wait_step():
                if (
                    polling
                    and not paused
                    and self._worker.in_hand_for() >= self.policy.pause_after_seconds
                ):
                    paused = self.consumer.assignment()
                    self.consumer.pause(paused)
                if paused:  # keeps the membership; a rebalance callback may run in here
                    got = self.consumer.consume(self.policy.max_messages, 0)
                    self._carry += [m for m in got if not _is_benign_error(m)]
        finally:
            if paused:
                self.consumer.resume(self.consumer.assignment())
        self.last_batch_at = time.monotonic()

    def _wait_step(self) -> bool:
        """Serve the batch in hand for a moment; True once it is done (or there is none).

        The heartbeat turns while the handler works, unless the batch has run past
        max_handle_seconds: then the watchdog sees a stuck loop and ends the process.
        """
        done = self._worker.step(_WAIT_STEP_SECONDS)
        in_hand_for = self._worker.in_hand_for()
        if in_hand_for < self.policy.max_handle_seconds:
            self.heartbeat.beat()
        if not done and in_hand_for // _SLOW_BATCH_LOG_SECONDS > self._slow_logged:
            self._slow_logged += 1
            log.warning(
                "a batch has been in hand for %.0f s; its handler is at:\n%s",
                in_hand_for,
                self._worker.where(),
            )
        return done

    def _settle(self) -> None:
        """Inside a rebalance callback: let the batch in hand finish (commit or be refused)
        before the assignment changes under it, and before on_assign touches what it uses."""
        while not self._wait_step():
            pass

    def _still_ahead(self, rest: list[Message]) -> list[Message]:
        """Messages of `rest` the consumer has not been rewound before (by a batch redone)."""
        next_offsets = {
            (p.topic, p.partition): p.offset
            for p in self.consumer.position(self.consumer.assignment())
        }
        return [m for m in rest if next_offsets.get(position(m)[:2], -1) > position(m)[2]]

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._settle()
        self.handler.on_assign(consumer, partitions)
        consumer.incremental_assign(partitions)
        consumer.resume(partitions)  # see _release
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        log.info("assigned %s", _names(partitions))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._settle()
        self._flush(polling=False)
        self._release(partitions)
        self.assigned -= {(p.topic, p.partition) for p in partitions}
        log.info("revoked %s", _names(partitions))

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._settle()  # its commit is refused now; the ledger/transaction fences its writes
        gone = {(p.topic, p.partition) for p in partitions}
        kept = [m for m in self._batch.messages if (m.topic(), m.partition()) not in gone]
        self._batch = _Batch()
        for m in kept:  # a subset of a batch that fitted: every one is taken
            self._batch.offer(m, self.policy)
        self._carry = [m for m in self._carry if (m.topic(), m.partition()) not in gone]
        self._release(partitions)
        self.assigned -= gone
        log.warning("lost %s: dropped their uncommitted messages", _names(partitions))

    def _release(self, partitions: list[TopicPartition]) -> None:
        """Give partitions up, unpaused: librdkafka keeps a partition's pause through unassign
        and a later assign, so one that left during a slow batch would come back stalled."""
        self.consumer.resume(partitions)
        self.consumer.incremental_unassign(partitions)


def _is_benign_error(message: Message) -> bool:
    err = message.error()
    if err is None:
        return False
    if err.code() == KafkaError._PARTITION_EOF:
        return True
    if err.fatal():
        raise KafkaException(err)
    log.warning("consumer: %s", err)
    return True


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing"


def commit_offsets(consumer: Consumer, messages: list[Message]) -> bool:
    """Commit the batch's offsets; False (logged) when the group rejects it during a rebalance.

    Safe to carry on: a partition that stayed ours is covered by the next commit, and one that
    moved is redone by its new owner from the last commit that did succeed.
    """
    try:
        consumer.commit(offsets=committed_offsets(messages), asynchronous=False)
        return True
    except KafkaException as exc:
        if exc.args[0].fatal():
            raise
        log.warning("offset commit refused (%s); the next commit or the next owner covers it", exc)
        return False


def rewind(consumer: Consumer, messages: list[Message]) -> None:
    """Seek each still-assigned partition back to the batch's first offset, to consume it again."""
    first: dict[tuple[str, int], int] = {}
    for m in messages:
        topic, partition, offset = position(m)
        first[(topic, partition)] = min(first.get((topic, partition), offset), offset)
    assigned = {(p.topic, p.partition) for p in consumer.assignment()}
    for (topic, partition), offset in first.items():
        if (topic, partition) in assigned:
            consumer.seek(TopicPartition(topic, partition, offset))


def position(m: Message) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed message (never None once consumed)."""
    topic, partition, offset = m.topic(), m.partition(), m.offset()
    assert topic is not None and partition is not None and offset is not None
    return topic, partition, offset


def committed_offsets(messages: list[Message]) -> list[TopicPartition]:
    """The offsets to commit after `messages`: last offset + 1 per partition."""
    last: dict[tuple[str, int], int] = {}
    for m in messages:
        topic, partition, offset = position(m)
        last[(topic, partition)] = max(last.get((topic, partition), -1), offset)
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
