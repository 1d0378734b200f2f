"""Warehouse-wide metrics: rows per table, data freshness and the reconciliation.

They describe the warehouse, not one process, so one process exports them: the summarizer (a
single replica, and a warehouse client already). A daemon thread refreshes them every
HEADRACE_WAREHOUSE_METRICS_INTERVAL_SECONDS with its own read-only warehouse connection; a scrape
only reads the last values.

Reconciliation (docs/architecture.md): every event that entered raw is a fact row, a recorded
duplicate or an error-zone record. headrace_reconciliation_events{side} exports the four sides:
  in         messages ever appended to <prefix>.raw (the sum of its partitions' high watermarks,
             so retention never lowers it)
  fact       rows of transaction_fact
  duplicate  rows of transaction_duplicate
  error      records in the bucket's error zone (each file read once, then cached by size:
             headrace.lake.error_zone.ErrorZoneTally)
The placed sides are counted before `in`, so fact + duplicate + error > in means an event was
counted twice; `in` of some minutes ago > placed now means events that entered that long ago are
still in no place. The alert rules (deploy/prometheus/alerts.yml) compare them that way.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import duckdb
from confluent_kafka.admin import AdminClient
from prometheus_client import Counter, Gauge
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from headrace.audit import reconciliation
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics
from headrace.lake import bookkeeping, warehouse
from headrace.lake.bucket import Bucket
from headrace.lake.error_zone import ErrorZoneTally
from headrace.runtime.settings import CommonSettings

log = logging.getLogger(__name__)

TABLES = (
    "transaction_fact",
    "transaction_duplicate",
    "account_dimension",
    "time_dimension",
    "transaction_daily_summary",
    "load_batch",
)

ROWS = Gauge("headrace_warehouse_rows", "Rows in a warehouse table.", ["table"])
NEWEST_EVENT = Gauge(
    "headrace_warehouse_newest_event_timestamp_seconds",
    "Event time of the newest row in transaction_fact (unix time).",
)
LAST_LOAD = Gauge(
    "headrace_warehouse_last_load_timestamp_seconds",
    "Commit time of the newest load batch (unix time).",
)
PENDING_SUMMARY = Gauge(
    "headrace_summary_pending_batches", "Load batches whose days are not summarized yet."
)
RECONCILIATION = Gauge(
    "headrace_reconciliation_events",
    "Events on each side of in = fact + duplicate + error.",
    ["side"],
)
RECONCILIATION_DAY = Gauge(
    "headrace_reconciliation_day_events",
    "Events on each side of in = fact + duplicate + error, by the UTC day they entered raw "
    "(the last 7 days).",
    ["day", "side"],
)
REFRESHED = Gauge(
    "headrace_warehouse_metrics_refresh_timestamp_seconds",
    "Unix time of the last complete refresh of the warehouse metrics.",
)
REFRESH_FAILURES = Counter(
    "headrace_warehouse_metrics_refresh_failures_total",
    "Refreshes of the warehouse metrics that failed (the last values stay exported).",
)


class WarehouseMetricsSettings(BaseSettings):
    """How often the warehouse metrics are refreshed (env prefix HEADRACE_WAREHOUSE_METRICS_)."""

    model_config = SettingsConfigDict(env_prefix="HEADRACE_WAREHOUSE_METRICS_", extra="ignore")

    interval_seconds: float = Field(
        15.0, description="Seconds between two refreshes of rows, freshness and reconciliation."
    )


@dataclass
class WarehouseMetrics:
    common: CommonSettings
    _con: duckdb.DuckDBPyConnection | None = None
    _errors: ErrorZoneTally | None = None
    _admin: AdminClient = field(init=False)

    def __post_init__(self) -> None:
        self._admin = kafka_clients.admin(self.common.bootstrap_servers)

    def refresh(self) -> None:
        if self._con is None:
            self._con = warehouse.connect(self.common, read_only=True)
            bucket = Bucket.open(self.common.bucket_url, self.common.gcs_endpoint)
            self._errors = ErrorZoneTally(bucket)
        assert self._errors is not None
        try:
            tables = self._tables(self._con)
        except duckdb.Error:
            self._con.close()
            self._con = None  # reconnect next time (the catalog may have moved under us)
            raise
        seen = reconciliation.observe(
            self._con, self._errors, self._admin, Topics(self.common.topic_prefix).raw, days=7
        )
        for table in TABLES:
            ROWS.labels(table).set(tables[table])
        for side, n in seen.sides().items():
            RECONCILIATION.labels(side).set(n)
        RECONCILIATION_DAY.clear()  # days that fell out of the window go away
        for day, balance in (seen.days or {}).items():
            for side, n in balance.sides().items():
                RECONCILIATION_DAY.labels(day.isoformat(), side).set(n)
        REFRESHED.set_to_current_time()

    def _tables(self, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        counts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in TABLES)
        tables = {str(t): int(n) for t, n in con.execute(counts).fetchall()}
        newest, last_load, pending = con.execute(
            f"""SELECT (SELECT epoch(max(event_time)) FROM transaction_fact),
                      (SELECT epoch(max(committed_at)) FROM load_batch),
                      ({bookkeeping.UNSUMMARIZED_COUNT_SQL})"""
        ).fetchone() or (None, None, 0)
        if newest is not None:
            NEWEST_EVENT.set(newest)
        if last_load is not None:
            LAST_LOAD.set(last_load)
        PENDING_SUMMARY.set(pending)
        return tables


def start(common: CommonSettings, interval_seconds: float | None = None) -> threading.Event:
    """Refresh the warehouse metrics on a daemon thread until the returned event is set."""
    interval = interval_seconds or WarehouseMetricsSettings().interval_seconds
    metrics = WarehouseMetrics(common)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                metrics.refresh()
            except Exception as exc:  # keep exporting the last values; say why once per try
                REFRESH_FAILURES.inc()
                log.warning("warehouse metrics not refreshed: %s", str(exc).splitlines()[0])
            stop.wait(max(0.0, interval - (time.monotonic() - started)))

    threading.Thread(target=run, name="warehouse-metrics", daemon=True).start()
    return stop
