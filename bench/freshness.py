"""Figure d: freshness under steady offered load, produce() -> visible in transaction_view.

Events are produced to raw at a fixed rate; a thread asks the warehouse every POLL_SECONDS for
its current snapshot and, when that changed, transaction_view for the ids not seen yet (in the
same read transaction); an event's visibility time is the start of the first poll that returned
it (so a latency is at most one poll period too high). The baseline is the same events'
latency from produce() to a plain consumer of raw: one Kafka hop, what any pipeline adds to.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from functools import partial

import duckdb

from bench.report import Figure
from headrace.codec.json_bytes import dumps_kept
from headrace.dev.sample_events import good_event
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics
from headrace.lake.warehouse import LAKE, in_transaction
from headrace.runtime.settings import CommonSettings

P99_TARGET = 2.0
POLL_SECONDS = 0.1


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def _events(first_id: int, total: int) -> tuple[list[bytes], list[bytes]]:
    """Valid events and their keys, event time now (the freshness run lasts seconds)."""
    rng = random.Random(11)
    accounts = [rng.randrange(10**11, 10**12) for _ in range(10_000)]
    now = datetime.now(UTC)
    event_time = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    values = []
    for i in range(total):
        event = good_event(rng, first_id + i, now, accounts)
        event["event_time"] = event_time
        values.append(dumps_kept(event))
    return values, [str(first_id + i).encode() for i in range(total)]


def run(
    common: CommonSettings, con: duckdb.DuckDBPyConnection, first_id: int, rate: int, seconds: float
) -> list[Figure]:
    total = int(rate * seconds)
    produced = [0.0] * total
    visible = [0.0] * total
    consumed = [0.0] * total
    raw = Topics(common.topic_prefix).raw
    stop = threading.Event()

    consumer = kafka_clients.consumer(
        common.bootstrap_servers,
        f"{common.topic_prefix}-freshness",
        **{"auto.offset.reset": "latest"},
    )
    consumer.subscribe([raw])
    while not consumer.assignment():  # only events produced after the assignment are measured
        consumer.consume(1, 0.2)

    def consume() -> None:
        while not stop.is_set():
            for m in consumer.consume(10_000, 0.05):
                now = time.monotonic()
                if m.error() is None and m.key():
                    i = int(m.key() or b"0") - first_id
                    if 0 <= i < total:
                        consumed[i] = now
        consumer.close()

    def changes(lo: int, seen_snapshot: object) -> tuple[object, list[tuple[int]]]:
        """The warehouse's snapshot, and the view's ids from `lo` if that snapshot is new.

        The view only changes with a new snapshot: asking it 10 times a second cost ~57 ms of CPU
        each (the join), more than half a core taken from the services measured.
        """
        snapshot = con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()
        if snapshot == seen_snapshot:
            return snapshot, []
        query = "SELECT transaction_id FROM transaction_view WHERE transaction_id >= ?"
        return snapshot, con.execute(query, [lo]).fetchall()

    def poll_view() -> None:
        lo, seen_snapshot = first_id, None
        while not stop.is_set():
            asked = time.monotonic()
            seen_snapshot, ids = in_transaction(con, partial(changes, lo, seen_snapshot))
            for (tid,) in ids:
                i = tid - first_id
                if 0 <= i < total and not visible[i]:
                    visible[i] = asked
            while lo - first_id < total and visible[lo - first_id]:
                lo += 1
            if lo - first_id >= total:
                return
            time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - asked)))

    threads = [threading.Thread(target=f, daemon=True) for f in (consume, poll_view)]
    for t in threads:
        t.start()
    producer = kafka_clients.producer(common.bootstrap_servers)
    # Built before the clock starts: on two cores, building each event while offering the load
    # took CPU from the services being measured.
    values, keys = _events(first_id, total)
    started = time.monotonic()
    for i in range(total):
        due = started + i / rate
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
            producer.poll(0)
        value, key = values[i], keys[i]
        produced[i] = time.monotonic()
        while True:
            try:
                producer.produce(raw, value, key)
                break
            except BufferError:  # behind schedule on a busy machine: let librdkafka drain
                producer.poll(0.01)
        producer.poll(0)
    offered = total / (time.monotonic() - started)
    producer.flush(30)
    threads[1].join(timeout=60)
    stop.set()
    threads[0].join(timeout=10)
    lat = sorted(v - p for v, p in zip(visible, produced, strict=True) if v)
    hop = sorted(c - p for c, p in zip(consumed, produced, strict=True) if c)
    missing = Counter(visible=total - len(lat), consumed=total - len(hop))
    notes = (
        f"{total:,} events offered at {offered:,.0f} ev/s; view polled every {POLL_SECONDS}s; "
        f"not visible within 60 s: {missing['visible']:,}"
    )
    return [
        Figure(
            key=f"freshness.p{q}",
            label=f"freshness p{q}, produce -> transaction_view",
            unit="s",
            value=_percentile(lat, q / 100),
            baseline=_percentile(hop, q / 100),
            baseline_label="one Kafka hop",
            goal="value_at_most" if q == 99 else "none",
            target=P99_TARGET if q == 99 else None,
            notes=notes,
            error=None if lat else "no event became visible",
            extra={"offered_rate": offered, "events": total, **dict(missing)},
        )
        for q in (50, 99)
    ]
