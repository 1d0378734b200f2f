"""Prometheus metrics shared by the services: constant names, service and outcome in labels.

Each metric answers one monitoring question (docs/operations.md lists them with the alerts built
on them). Names follow Prometheus conventions: base units, `_total` for counters, `_seconds`,
`_bytes`, `_timestamp_seconds` for points in time (ages are computed in PromQL as `time() - x`).
Consumer lag lives in headrace/kafka/lag_metrics.py; warehouse rows, freshness and reconciliation in
headrace/audit/warehouse_metrics.py.
"""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

EVENTS_IN = Counter(
    "headrace_events_in_total", "Events consumed by a service.", ["service", "topic"]
)
EVENTS_OUT = Counter(
    "headrace_events_out_total",
    "Events written by a service, by destination (a topic, a bucket zone or a table).",
    ["service", "destination"],
)
EVENTS_REJECTED = Counter(
    "headrace_events_rejected_total", "Events rejected, by reason code.", ["service", "reason"]
)
ISOLATED_RECORDS = Counter(
    "headrace_isolated_records_total",
    "Records a service could not process although they passed the checks before it: each failed "
    "alone when its batch was split, and went to the error zone as UNPROCESSABLE "
    "(headrace/contract/poison.py). Any increase is a gap between validation and a later step.",
    ["service"],
)
BATCH_SECONDS = Histogram(
    "headrace_batch_seconds",
    "Time to process and commit one batch.",
    ["service"],
    buckets=LATENCY_BUCKETS,
)
COMMIT_SECONDS = Histogram(
    "headrace_commit_seconds",
    "Time to commit one batch: offsets (stager), the Kafka transaction (validator), "
    "the warehouse transaction's COMMIT (loader).",
    ["service"],
    buckets=LATENCY_BUCKETS,
)
BATCH_RETRIES = Counter(
    "headrace_batch_retries_total", "Batches retried after a transient failure.", ["service"]
)
BATCH_FAILURES = Counter(
    "headrace_batch_failures_total",
    "Batches that failed and were left to be redone (a refused commit, an unacknowledged "
    "manifest, an ingest request answered 503). A batch that kills the process shows as a "
    "restart (process_start_time_seconds) instead.",
    ["service"],
)
BYTES_WRITTEN = Counter(
    "headrace_bucket_bytes_written_total", "Bytes written to a bucket zone.", ["service", "zone"]
)
FILES_WRITTEN = Counter(
    "headrace_bucket_files_written_total", "Files written to a bucket zone.", ["service", "zone"]
)
LAST_PROGRESS = Gauge(
    "headrace_last_progress_timestamp_seconds",
    "Unix time of the service's last committed batch.",
    ["service"],
)
NEWEST_EVENT = Gauge(
    "headrace_newest_event_timestamp_seconds",
    "Event time of the newest event this replica has loaded (unix time).",
    ["service"],
)
CATALOG_UP = Gauge(
    "headrace_catalog_up",
    "1 while the warehouse catalog answers this service's calls, 0 since a connect or transaction "
    "failed to reach it (headrace/lake/catalog_health.py).",
    ["service"],
)
CONTRACT_INFO = Gauge(
    "headrace_contract_info",
    "1 for the contract (and its schema file) the validator applies now.",
    ["service", "event", "schema"],
)

INGEST_REQUESTS = Counter(
    "headrace_ingest_requests_total",
    "Requests to the producer's POST /v1/events, by outcome: accepted (202), replayed (202 from "
    "an Idempotency-Key already accepted), bad_request (400), too_large (413), in_flight (409), "
    "key_reused (422), unavailable (503, Kafka did not acknowledge in time).",
    ["outcome"],
)
INGEST_SECONDS = Histogram(
    "headrace_ingest_request_seconds",
    "Time from an ingest request's body to Kafka's acknowledgement of all its events.",
    buckets=LATENCY_BUCKETS,
)
INGEST_IDEMPOTENCY_KEYS = Gauge(
    "headrace_ingest_idempotency_keys",
    "Idempotency-Keys of accepted requests the producer remembers.",
)
INGEST_OUTCOMES = (
    "accepted",
    "replayed",
    "bad_request",
    "too_large",
    "in_flight",
    "key_reused",
    "unavailable",
)


_newest: dict[str, float] = {}
_commit_started: dict[str, float] = {}


def declare(service: str) -> None:
    """Create the service's zero-valued series, so rates and alerts see them before any event."""
    for counter in (BATCH_RETRIES, BATCH_FAILURES, ISOLATED_RECORDS):
        counter.labels(service)
    for histogram in (BATCH_SECONDS, COMMIT_SECONDS):
        histogram.labels(service)


def zone_written(service: str, zone: str, nbytes: int, files: int, events: int) -> None:
    """Files written to a bucket zone: bytes, files and the events they hold."""
    BYTES_WRITTEN.labels(service, zone).inc(nbytes)
    FILES_WRITTEN.labels(service, zone).inc(files)
    EVENTS_OUT.labels(service, zone).inc(events)


def newest_event(service: str, event_times: list[datetime]) -> None:
    """Move the newest-event gauge forward to the latest of `event_times` (never backwards)."""
    if not event_times:
        return
    newest = max(event_times).timestamp()
    if newest > _newest.get(service, float("-inf")):
        _newest[service] = newest
        NEWEST_EVENT.labels(service).set(newest)


def commit_starting(service: str) -> None:
    """Mark the start of a commit that another function completes (see commit_done)."""
    _commit_started[service] = time.monotonic()


def commit_done(service: str) -> None:
    """Observe the time since the last commit_starting(service), if there was one."""
    started = _commit_started.pop(service, None)
    if started is not None:
        COMMIT_SECONDS.labels(service).observe(time.monotonic() - started)
