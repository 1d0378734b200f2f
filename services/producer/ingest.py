"""POST /v1/events: the HTTP ingest endpoint (the Kafka side; the body rules are in http_body).

A request is answered 202 only after Kafka acknowledged every one of its events. The producer
is served by a poller thread (librdkafka calls delivery callbacks from poll()), and each request
waits on an asyncio future its callbacks complete, at most `ack_timeout_seconds`: librdkafka's
message.timeout.ms is set to the same value, so when Kafka is down the events are given up and
the request is answered 503 with Retry-After, instead of hanging or being sent later behind the
client's back.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from typing import Any

from aiohttp import web
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from headrace.kafka import clients as kafka_clients
from headrace.runtime import metrics
from headrace.runtime.http import Heartbeat
from headrace.runtime.registry import PRODUCER
from services.producer.config import ProducerSettings
from services.producer.events import RawEvent
from services.producer.http_body import BadBody, EventTooLarge, split_body
from services.producer.idempotency import IdempotencyKeys, Seen

SERVICE = PRODUCER.name
MAX_KEY_LENGTH = 255
_POLL_SECONDS = 0.1

log = logging.getLogger(__name__)


def ingest_producer(bootstrap: str, own: ProducerSettings, **overrides: Any) -> Producer:
    timeout_ms = int(own.ack_timeout_seconds * 1000)
    return kafka_clients.producer(
        bootstrap, **{"message.timeout.ms": timeout_ms, "linger.ms": 5, **overrides}
    )


class Acks:
    """Completes a future once every event of one request is acknowledged or has failed."""

    def __init__(self, loop: asyncio.AbstractEventLoop, expected: int) -> None:
        self.done: asyncio.Future[KafkaError | None] = loop.create_future()
        self._loop, self._waiting = loop, expected
        self._error: KafkaError | None = None

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:  # poller thread
        self._error = self._error or err
        self._waiting -= 1
        if self._waiting == 0 and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if not self.done.done():  # the request may have timed out and gone already
            self.done.set_result(self._error)


class Poller:
    """Serves the producer's delivery callbacks on a thread of its own, beating `heartbeat` on
    every turn: what keeps the producer alive is this loop, busy or idle."""

    def __init__(self, producer: Producer, heartbeat: Heartbeat) -> None:
        self._producer, self._stop = producer, threading.Event()
        self._heartbeat = heartbeat
        self._thread = threading.Thread(target=self._run, daemon=True, name="kafka-poll")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(_POLL_SECONDS)
            self._heartbeat.beat()


def _answer(
    outcome: str, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> web.Response:
    metrics.INGEST_REQUESTS.labels(outcome).inc()
    return web.json_response(body, status=status, headers=headers)


class Ingest:
    def __init__(self, producer: Producer, topic: str, own: ProducerSettings) -> None:
        self.producer, self.topic, self.own = producer, topic, own
        self.keys = IdempotencyKeys(own.idempotency_window_seconds, own.idempotency_max_keys)
        for outcome in metrics.INGEST_OUTCOMES:
            metrics.INGEST_REQUESTS.labels(outcome)

    async def post_events(self, request: web.Request) -> web.Response:
        limit = self.own.max_request_bytes
        too_large = {"error": f"body larger than {limit:,} bytes; send fewer events per request"}
        if (request.content_length or 0) > limit:
            return _answer("too_large", 413, too_large)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # a chunked body that grew past the limit
            return _answer("too_large", 413, too_large)
        key = request.headers.get("Idempotency-Key")
        if key is None:
            response, _ = await self._publish_body(body, [])
            return response
        if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isprintable():
            return _answer("bad_request", 400, {"error": "Idempotency-Key: 1 to 255 characters"})
        return await self._once(key, body)

    async def _once(self, key: str, body: bytes) -> web.Response:
        seen, accepted = self.keys.begin(key, hashlib.blake2b(body, digest_size=16).digest())
        if seen is Seen.DONE:
            replayed = {"accepted": accepted, "replayed": True}
            return _answer("replayed", 202, replayed, {"Idempotent-Replayed": "true"})
        if seen is Seen.IN_FLIGHT:
            busy = {"error": "a request with this Idempotency-Key is still in progress"}
            return _answer("in_flight", 409, busy, {"Retry-After": "1"})
        if seen is Seen.KEY_REUSED:
            reused = {"error": "this Idempotency-Key came with a different body; use a new key"}
            return _answer("key_reused", 422, reused)
        accepted = 0
        try:
            response, accepted = await self._publish_body(
                body, [("headrace.idempotency_key", key.encode())]
            )
        finally:
            if accepted:
                self.keys.finish(key, accepted)
            else:
                self.keys.abandon(key)  # a failed request leaves nothing: its retry runs afresh
            metrics.INGEST_IDEMPOTENCY_KEYS.set(len(self.keys))
        return response

    async def _publish_body(
        self, body: bytes, headers: list[tuple[str, bytes]]
    ) -> tuple[web.Response, int]:
        """The answer, and the number of events accepted (0 unless the answer is 202)."""
        try:
            events = split_body(body)
        except BadBody as bad:
            problems = {
                "error": "body not accepted; nothing was published",
                "problems": bad.problems,
                "problem_count": bad.total,
            }
            return _answer("bad_request", 400, problems), 0
        except EventTooLarge as exc:
            return _answer("too_large", 413, {"error": str(exc)}), 0
        except Exception as exc:  # whatever a body does to the parsers is the body's fault
            log.warning("a request body failed to parse: %r", exc)
            unreadable = {"error": f"body not accepted; nothing was published: {exc!r}"[:500]}
            return _answer("bad_request", 400, unreadable), 0
        started = time.monotonic()
        error = await self._publish(events, headers)
        if error is not None:
            metrics.BATCH_FAILURES.labels(SERVICE).inc()
            retry = {"Retry-After": str(self.own.retry_after_seconds)}
            down = {"error": f"Kafka unavailable ({error}); retry later", "accepted": 0}
            return _answer("unavailable", 503, down, retry), 0
        metrics.INGEST_SECONDS.observe(time.monotonic() - started)
        metrics.EVENTS_OUT.labels(SERVICE, self.topic).inc(len(events))
        return _answer("accepted", 202, {"accepted": len(events)}), len(events)

    async def _publish(
        self, events: list[RawEvent], headers: list[tuple[str, bytes]]
    ) -> str | None:
        """None once Kafka acknowledged every event, else what went wrong."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.own.ack_timeout_seconds
        acks = Acks(loop, len(events))
        for e in events:
            row_headers: list[tuple[str, str | bytes | None]] = [
                ("headrace.source", b"http"),
                *headers,
                ("headrace.source_row", str(e.row).encode()),
            ]
            while True:
                try:
                    self.producer.produce(
                        self.topic, e.value, e.key, headers=row_headers, on_delivery=acks
                    )
                    break
                except BufferError:  # librdkafka's queue is full: Kafka is slow or away
                    if loop.time() > deadline:
                        return "the producer's queue stayed full"
                    await asyncio.sleep(0.05)
                except KafkaException as exc:
                    return str(exc.args[0])
        # A second past librdkafka's own timeout, so that it normally answers first, saying why.
        try:
            error = await asyncio.wait_for(acks.done, max(0.0, deadline - loop.time()) + 1.0)
        except TimeoutError:
            return "no acknowledgement in time"
        return None if error is None else str(error.str())


def add_routes(app: web.Application, ingest: Ingest) -> None:
    app.router.add_post("/v1/events", ingest.post_events)
