"""The flush policy on a real topic: batches cut on messages, bytes, time span or idleness."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Message, TopicPartition

from headrace.kafka import clients as kafka_clients
from headrace.kafka.consumer_loop import BatchPolicy, ConsumerLoop, StopFlag, commit_offsets, rewind
from headrace.kafka.topics import ensure_topics
from headrace.runtime.http import Heartbeat

pytestmark = pytest.mark.integration


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[tuple[int, int, int]]] = []  # (offset, bytes, timestamp)

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start at the committed offsets."""

    def handle(self, consumer: Consumer, messages: list[Message]) -> None:
        self.batches.append(
            [(m.offset() or 0, len(m.value() or b""), m.timestamp()[1]) for m in messages]
        )


def run_policy(
    bootstrap: str, policy: BatchPolicy, values: list[tuple[bytes, int]], expect: int
) -> list[list[tuple[int, int, int]]]:
    topic = f"policy-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_clients.admin(bootstrap), {topic: 1})
    producer = kafka_clients.producer(bootstrap)
    for value, ts in values:
        producer.produce(topic, value, timestamp=ts)
    assert producer.flush(30) == 0
    recorder = Recorder()
    consumer = kafka_clients.consumer(bootstrap, f"g-{topic}")
    loop = ConsumerLoop(consumer, [topic], recorder, policy, Heartbeat(), StopFlag())
    deadline = time.monotonic() + 60

    def done() -> bool:
        seen = sum(len(b) for b in recorder.batches)
        return seen >= expect or time.monotonic() > deadline

    loop.run(idle_exit=done)
    offsets = [o for b in recorder.batches for o, _, _ in b]
    assert offsets == list(range(expect))  # every message once, in order
    return recorder.batches


NOW_MS = int(time.time() * 1000)
Run = Callable[[BatchPolicy, list[tuple[bytes, int]], int], list[list[tuple[int, int, int]]]]


@pytest.fixture
def run(bootstrap: str) -> Run:
    return lambda policy, values, expect: run_policy(bootstrap, policy, values, expect)


def test_cut_on_bytes(run: Run) -> None:
    batches = run(
        BatchPolicy(max_messages=10_000, max_bytes=10_000), [(b"x" * 1000, NOW_MS)] * 95, 95
    )
    assert all(sum(n for _, n, _ in b) <= 10_000 for b in batches)
    assert len(batches) >= 10


def test_cut_on_messages(run: Run) -> None:
    batches = run(BatchPolicy(max_messages=7), [(b"x", NOW_MS)] * 50, 50)
    assert max(len(b) for b in batches) <= 7 and len(batches) >= 8


def test_cut_on_record_time_span(run: Run) -> None:
    # An hour of records, one a minute, with a late one from yesterday in the middle.
    values = [(b"x", NOW_MS + i * 60_000) for i in range(60)]
    values.insert(30, (b"late", NOW_MS - 86_400_000))
    batches = run(BatchPolicy(max_messages=10_000, max_span_ms=600_000), values, 61)
    for b in batches:
        times = [t for _, _, t in b]
        assert max(times) - min(times) <= 600_000
    assert [t for _, _, t in next(b for b in batches if len(b) == 1)] == [NOW_MS - 86_400_000]


def test_a_quiet_partition_still_flushes(run: Run) -> None:
    started = time.monotonic()
    batches = run(
        BatchPolicy(max_messages=1_000_000, max_wait_seconds=0.3), [(b"x", NOW_MS)] * 5, 5
    )
    assert [len(b) for b in batches] == [5]
    assert time.monotonic() - started < 30


def spread_topic(bootstrap: str, prefix: str, partitions: int, messages: int) -> str:
    """A new topic with `messages` spread evenly over its partitions, round robin."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_clients.admin(bootstrap), {topic: partitions})
    producer = kafka_clients.producer(bootstrap)
    for i in range(messages):
        producer.produce(topic, b"x", partition=i % partitions)
    assert producer.flush(30) == 0
    return topic


class SlowCommitter(Recorder):
    """Takes longer than max.poll.interval.ms over its first batch, then commits it."""

    def __init__(self, seconds: float, heartbeat: Heartbeat) -> None:
        super().__init__()
        self.seconds, self.heartbeat = seconds, heartbeat
        self.commits: list[bool] = []
        self.alive_while_slow = False

    def handle(self, consumer: Consumer, messages: list[Message]) -> None:
        if not self.batches:
            time.sleep(self.seconds)
            self.alive_while_slow = self.heartbeat.alive()[0]
        super().handle(consumer, messages)
        self.commits.append(commit_offsets(consumer, messages))


def test_a_batch_slower_than_max_poll_interval_keeps_its_partitions(
    bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A member that stops polling for max.poll.interval.ms leaves the group: its commit is
    # refused and its batch redone by the next owner. The loop polls (paused) while the batch
    # is in hand, so the slow batch commits and nothing is handled twice.
    topic = spread_topic(bootstrap, "slow", partitions=2, messages=200)
    heartbeat = Heartbeat(max_silence=5.0)
    slow = SlowCommitter(seconds=9.0, heartbeat=heartbeat)
    poll_limits = {"session.timeout.ms": 6000, "max.poll.interval.ms": 6000}
    consumer = kafka_clients.consumer(bootstrap, f"g-{topic}", **poll_limits)
    loop = ConsumerLoop(
        consumer, [topic], slow, BatchPolicy(max_messages=50), heartbeat, StopFlag()
    )

    def lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
        pytest.fail(f"partitions lost: {partitions}")

    monkeypatch.setattr(loop, "_on_lost", lost)
    deadline = time.monotonic() + 60
    loop.run(idle_exit=lambda: sum(map(len, slow.batches)) >= 200 or time.monotonic() > deadline)

    assert slow.commits and all(slow.commits)  # the slow batch's commit was accepted
    assert sorted(o for b in slow.batches for o, _, _ in b) == sorted(list(range(100)) * 2)
    assert slow.alive_while_slow  # the loop turned while the batch was in hand
    check = kafka_clients.consumer(bootstrap, f"g-{topic}")
    committed = check.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=10)
    assert [tp.offset for tp in committed] == [100, 100]
    check.close()


class Committer:
    """Commits every batch (the first one slowly); what it committed is what it handled."""

    def __init__(self, slow_seconds: float = 0.0, leave_after_first: StopFlag | None = None):
        self.slow_seconds, self.leave_after_first = slow_seconds, leave_after_first
        self.slow_started = threading.Event()
        self.committed: list[tuple[int, int]] = []

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start at the committed offsets."""

    def handle(self, consumer: Consumer, messages: list[Message]) -> None:
        if self.slow_seconds and not self.slow_started.is_set():
            self.slow_started.set()
            time.sleep(self.slow_seconds)
        if commit_offsets(consumer, messages):
            self.committed += [(m.partition() or 0, m.offset() or 0) for m in messages]
        else:
            rewind(consumer, messages)
        if self.leave_after_first:
            self.leave_after_first.stopped = True


def test_partitions_that_move_during_a_slow_batch_flow_again_when_they_come_back(
    bootstrap: str,
) -> None:
    # A second member joins while the first has a slow batch in hand (its partitions paused),
    # takes some partitions, handles one batch and leaves, so they come back to the first.
    # The revoke callback waits for the batch, whose commit (a consumer call from the handler)
    # is carried out inside that callback: the partitions move with their offsets committed,
    # nothing is redone, and neither member blocks (a commit from the worker thread while the
    # loop's thread waited in a callback deadlocked both). librdkafka keeps a partition's pause
    # across unassign and assign: the partitions that come back must not stay paused.
    topic = spread_topic(bootstrap, "rebalance", partitions=4, messages=4000)
    second_stop = StopFlag()
    first, second = Committer(slow_seconds=4.0), Committer(leave_after_first=second_stop)
    deadline = time.monotonic() + 60

    def done() -> bool:
        return len(first.committed) + len(second.committed) >= 4000 or time.monotonic() > deadline

    failures: list[BaseException] = []

    def member(handler: Committer, stop: StopFlag) -> threading.Thread:
        consumer = kafka_clients.consumer(bootstrap, f"g-{topic}")
        policy = BatchPolicy(max_messages=50)
        loop = ConsumerLoop(consumer, [topic], handler, policy, Heartbeat(), stop)

        def run() -> None:
            try:
                loop.run(idle_exit=done)
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=run, name=f"member-{id(handler)}")
        thread.start()
        return thread

    threads = [member(first, StopFlag())]
    assert first.slow_started.wait(30)
    threads.append(member(second, second_stop))
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a member is stuck"
    assert not failures
    assert second.committed, "the second member never got partitions"
    everything = sorted((p, o) for p in range(4) for o in range(1000))
    assert sorted(first.committed + second.committed) == everything  # each exactly once
