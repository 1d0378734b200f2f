"""Prometheus metrics shared by the services: constant names, service and outcome in labels."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_IN = Counter(
    "headrace_events_in_total", "Events consumed by a service.", ["service", "topic"]
)
EVENTS_OUT = Counter(
    "headrace_events_out_total", "Events written by a service.", ["service", "destination"]
)
EVENTS_REJECTED = Counter(
    "headrace_events_rejected_total", "Events rejected, by reason code.", ["service", "reason"]
)
BATCH_SECONDS = Histogram(
    "headrace_batch_seconds",
    "Time to process and commit one batch.",
    ["service"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_RETRIES = Counter(
    "headrace_batch_retries_total", "Batches retried after a transient failure.", ["service"]
)
BYTES_WRITTEN = Counter(
    "headrace_bucket_bytes_written_total", "Bytes written to a bucket zone.", ["service", "zone"]
)
LAST_PROGRESS = Gauge(
    "headrace_last_progress_timestamp_seconds",
    "Unix time of the service's last committed batch.",
    ["service"],
)
