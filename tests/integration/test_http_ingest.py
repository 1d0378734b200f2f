"""POST /v1/events against the real broker: what is accepted is on raw, once; what is not, is not.

The ingest app runs in this process on a free port (the same app `headrace run producer` serves);
the events are read back from the test's own raw topic.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import TopicPartition

from headrace.dev.infra.ports import free_port_block
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics
from headrace.runtime.http import HealthServer
from headrace.runtime.settings import CommonSettings
from services.producer.config import ProducerSettings
from services.producer.ingest import ingest_producer
from services.producer.runner import ingest_app

pytestmark = pytest.mark.integration


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Endpoint:
    url: str
    topic: str
    bootstrap: str

    def post(self, body: bytes, **headers: str) -> Reply:
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        for name, value in headers.items():
            request.add_header(name.replace("_", "-"), value)
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return Reply(r.status, json.loads(r.read()), dict(r.headers))
        except urllib.error.HTTPError as e:
            return Reply(e.code, json.loads(e.read()), dict(e.headers))

    def raw_values(self, expect: int, wait: float = 10.0) -> list[bytes]:
        """Every message on raw, after waiting until at least `expect` are there."""
        consumer = kafka_clients.consumer(self.bootstrap, f"read-{uuid.uuid4().hex[:8]}")
        try:
            partitions = consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
            consumer.assign([TopicPartition(self.topic, p, 0) for p in partitions])
            values: list[bytes] = []
            deadline = time.monotonic() + wait
            # Read on for a moment after `expect` is reached, so an extra copy would show.
            while time.monotonic() < deadline:
                for m in consumer.consume(1000, timeout=0.5):
                    assert m.error() is None, m.error()
                    values.append(m.value() or b"")
                if len(values) >= expect:
                    deadline = min(deadline, time.monotonic() + 1.0)
            return values
        finally:
            consumer.close()


@contextlib.contextmanager
def _serve(
    bootstrap: str, topic: str, own: ProducerSettings, **overrides: Any
) -> Iterator[Endpoint]:
    producer = ingest_producer(bootstrap, own, **overrides)
    port = free_port_block(1)
    server = HealthServer(ingest_app(producer, topic, own), "127.0.0.1", port)
    server.start()
    try:
        yield Endpoint(f"http://127.0.0.1:{port}/v1/events", topic, bootstrap)
    finally:
        server.stop()


@pytest.fixture
def endpoint(make_settings: Callable[..., CommonSettings]) -> Iterator[Endpoint]:
    common = make_settings()
    own = ProducerSettings(max_request_bytes=64 * 1024, ack_timeout_seconds=5)
    with _serve(common.bootstrap_servers, Topics(common.topic_prefix).raw, own) as served:
        yield served


def test_object_array_and_ndjson_are_accepted_as_sent(endpoint: Endpoint) -> None:
    one = b'{"transaction_id": 1, "amount": 1.50}'
    array = b'[{"transaction_id": 2}, {"transaction_id": 3, "note": "caf\\u00e9"}]'
    ndjson = b'{"transaction_id": 4}\n{"transaction_id": 5}\r\n\n{"transaction_id": 6}\n'

    assert endpoint.post(one).body == {"accepted": 1}
    reply = endpoint.post(array)
    assert (reply.status, reply.body) == (202, {"accepted": 2})
    assert endpoint.post(ndjson, Content_Type="application/x-ndjson").body == {"accepted": 3}

    assert sorted(endpoint.raw_values(6)) == sorted(
        [
            one,
            b'{"transaction_id": 2}',
            b'{"transaction_id": 3, "note": "caf\\u00e9"}',
            b'{"transaction_id": 4}',
            b'{"transaction_id": 5}',
            b'{"transaction_id": 6}',
        ]
    )


def test_too_large_and_bad_bodies_publish_nothing(endpoint: Endpoint) -> None:
    big = b"[" + b",".join([b'{"transaction_id": 1}'] * 4000) + b"]"  # > 64 KiB
    reply = endpoint.post(big)
    assert reply.status == 413 and "larger than" in reply.body["error"]

    reply = endpoint.post(b'{"transaction_id": 1}\n{"transaction_id": \n[2]\n')
    assert reply.status == 400
    assert [p.split(":")[0] for p in reply.body["problems"]] == ["line 2", "line 3"]
    assert reply.body["problem_count"] == 2

    assert endpoint.post(b"not json").status == 400
    deep = b"[" * 30_000 + b"]" * 30_000  # under the 64 KiB limit of this endpoint
    for body in (deep, b'{"transaction_id": 1, "x": ' + deep + b"}", b"[" + deep + b"]"):
        reply = endpoint.post(body)
        assert reply.status == 400 and "nested too deeply" in str(reply.body), reply.body
    assert endpoint.raw_values(0, wait=2.0) == []


def test_healthz_of_an_idle_producer_reads_as_alive(endpoint: Endpoint) -> None:
    time.sleep(1.5)  # idle: no request since it started
    url = endpoint.url.replace("/v1/events", "/healthz")
    with urllib.request.urlopen(url, timeout=10) as r:
        status, text = r.status, r.read().decode()
    assert status == 200
    assert float(text.split("last turned ")[1].split("s ago")[0]) < 1.0, text


def test_a_retry_with_the_same_idempotency_key_publishes_once(endpoint: Endpoint) -> None:
    body = b'[{"transaction_id": 10}, {"transaction_id": 11}]'
    first = endpoint.post(body, Idempotency_Key="order-10")
    again = endpoint.post(body, Idempotency_Key="order-10")
    other = endpoint.post(b'{"transaction_id": 12}', Idempotency_Key="order-10")

    assert (first.status, first.body) == (202, {"accepted": 2})
    assert (again.status, again.body) == (202, {"accepted": 2, "replayed": True})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert other.status == 422
    assert sorted(endpoint.raw_values(2)) == [b'{"transaction_id": 10}', b'{"transaction_id": 11}']


def test_concurrent_retries_of_one_key_publish_once(endpoint: Endpoint) -> None:
    body = b"\n".join(b'{"transaction_id": %d}' % i for i in range(2000))
    start = threading.Barrier(4)

    def send(_: int) -> Reply:
        start.wait()
        return endpoint.post(body, Idempotency_Key="batch-7")

    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(send, range(4)))

    statuses = sorted(r.status for r in replies)
    assert statuses.count(202) >= 1 and set(statuses) <= {202, 409}
    in_flight = [r for r in replies if r.status == 409]
    assert all(r.headers.get("Retry-After") == "1" for r in in_flight)
    assert len(endpoint.raw_values(2000)) == 2000


def test_kafka_unavailable_is_503_with_retry_after_within_seconds() -> None:
    # A bootstrap address where nothing listens: the broker is down for this producer.
    dead = f"127.0.0.1:{free_port_block(1)}"
    own = ProducerSettings(ack_timeout_seconds=2, retry_after_seconds=7)
    with _serve(dead, "headrace.raw", own, log_level=0) as down:
        started = time.monotonic()
        reply = down.post(b'{"transaction_id": 1}', Idempotency_Key="k-1")
        elapsed = time.monotonic() - started
        assert reply.status == 503 and reply.headers.get("Retry-After") == "7"
        assert reply.body["accepted"] == 0 and "Kafka unavailable" in reply.body["error"]
        assert elapsed < 4.0
        # The failed request left its key free: a retry is processed again (and fails again).
        assert down.post(b'{"transaction_id": 1}', Idempotency_Key="k-1").status == 503
