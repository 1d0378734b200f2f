"""The producer's Kafka side: file replay with a progress bar, and the HTTP ingest service."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from aiohttp import web
from confluent_kafka import KafkaError, Message, Producer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics
from headrace.runtime import metrics
from headrace.runtime.crash_points import crash_point
from headrace.runtime.errors import OperatorError
from headrace.runtime.http import Heartbeat, build_app
from headrace.runtime.registry import PRODUCER
from headrace.runtime.settings import CommonSettings
from headrace.serving import service
from services.producer.config import ProducerSettings
from services.producer.core import CheckedFile, RawEvent, open_file
from services.producer.ingest import Ingest, Poller, add_routes, ingest_producer

log = logging.getLogger(__name__)
SERVICE = PRODUCER.name
Headers = list[tuple[str, str | bytes | None]]


@dataclass
class Deliveries:
    """Counts acknowledgements; the first failure is kept to report.

    With an ack log, every acknowledged message's `partition offset` is appended to it (flushed
    after each batch), so an audit can tell exactly which events the broker accepted.
    """

    ack_log: IO[str] | None = None
    acked: int = 0
    failed: int = 0
    first_error: KafkaError | None = field(default=None)

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            self.acked += 1
            if self.ack_log is not None:
                self.ack_log.write(f"{msg.partition()} {msg.offset()}\n")
        else:
            self.failed += 1
            self.first_error = self.first_error or err

    def flush_log(self) -> None:
        if self.ack_log is not None:
            self.ack_log.flush()


def send(
    producer: Producer,
    topic: str,
    events: list[RawEvent],
    headers: Headers,
    on_delivery: Deliveries,
) -> None:
    for e in events:
        row_headers: Headers = [*headers, ("headrace.source_row", str(e.row).encode())]
        while True:
            try:
                producer.produce(
                    topic, e.value, e.key, headers=row_headers, on_delivery=on_delivery
                )
                break
            except BufferError:  # local queue full: let librdkafka drain it
                producer.poll(0.05)
    producer.poll(0)


def replay(
    path: Path,
    common: CommonSettings,
    rate_limit: float = 0.0,
    show_progress: bool = True,
    ack_log: Path | None = None,
) -> int:
    """Publish every row of `path` to raw; return the number acknowledged by the broker.

    The whole file is read once before anything is published (core.open_file): a malformed
    file publishes nothing and its error names the line to fix.
    """
    checked = open_file(path, common.schemas_dir)
    kafka_clients.wait_for_broker(common.bootstrap_servers)
    with contextlib.ExitStack() as stack:
        log_file = stack.enter_context(ack_log.open("a")) if ack_log else None
        return _replay(checked, common, rate_limit, show_progress, Deliveries(log_file))


def _replay(
    checked: CheckedFile,
    common: CommonSettings,
    rate_limit: float,
    show_progress: bool,
    deliveries: Deliveries,
) -> int:
    topic = Topics(common.topic_prefix).raw
    producer = kafka_clients.budgeted_producer(common)
    path = checked.path
    headers: Headers = [("headrace.source_file", path.name.encode())]
    started, sent = time.monotonic(), 0
    columns = (
        TextColumn("replay {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, disable=not show_progress, transient=False) as progress:
        task = progress.add_task(path.name, total=checked.rows)
        for batch in checked.batches():
            send(producer, topic, batch, headers, deliveries)
            deliveries.flush_log()
            crash_point("producer.after_batch")
            sent += len(batch)
            progress.update(task, advance=len(batch))
            if rate_limit > 0:
                time.sleep(max(0.0, sent / rate_limit - (time.monotonic() - started)))
        remaining = producer.flush(60)
        deliveries.flush_log()
    metrics.EVENTS_OUT.labels(SERVICE, topic).inc(deliveries.acked)
    if remaining or deliveries.failed:
        raise OperatorError(
            f"{deliveries.failed + remaining} of {sent} events were not acknowledged "
            f"({deliveries.first_error or 'timed out'}); check the broker and replay the file again"
        )
    return deliveries.acked


def main() -> None:
    """`headrace run producer`: the HTTP ingest endpoint with health and metrics."""
    common, own = service.start(SERVICE, ProducerSettings)
    producer = ingest_producer(common.bootstrap_servers, own)
    web.run_app(
        ingest_app(producer, Topics(common.topic_prefix).raw, own),
        host=common.http_host,
        port=own.port,
        print=None,
    )


POLLER_MAX_SILENCE_SECONDS = 60.0


def ingest_app(producer: Producer, topic: str, own: ProducerSettings) -> web.Application:
    """/v1/events with /healthz, /readyz and /metrics; the producer is polled and flushed."""
    # /healthz reads "main loop last turned 0.1s ago" while the delivery poller runs, idle or
    # not, and fails if it stops: requests wait on the deliveries it serves.
    heartbeat = Heartbeat(max_silence=POLLER_MAX_SILENCE_SECONDS)
    app = build_app(heartbeat, lambda: (True, "accepting events"), own.max_request_bytes)
    add_routes(app, Ingest(producer, topic, own))
    poller = Poller(producer, heartbeat)

    async def start(_: web.Application) -> None:
        poller.start()

    async def stop(_: web.Application) -> None:
        poller.stop()
        # Every request was answered, so nothing is left to deliver but late retries: bounded.
        producer.flush(own.ack_timeout_seconds)

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app
