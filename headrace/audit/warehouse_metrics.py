"""Warehouse-wide metrics: the reconciliation, rows per table and data freshness.

They describe the warehouse, not one process, so one process exports them: the summarizer (a
single replica, and a warehouse client already). After each refresh of the marts it observes the
reconciliation once (headrace.audit.reconciliation.observe) and hands that one observation to
these gauges and to its BI snapshot (services/summarizer/publisher.py), so /metrics and the
snapshot's `reconciliation` table show the same numbers. At most every
HEADRACE_WAREHOUSE_METRICS_INTERVAL_SECONDS an observation also takes the balance of each recent
day, and the rows of the other tables and the freshness gauges are refreshed with it: those
read fact rows and every table, more than a refresh should pay each time (the fact and duplicate
rows are sides of every observation, so their gauges follow each one). A scrape only reads the
last values.

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
still in no place. The alert rules (deploy/prometheus/alerts.yml) compare them that way. An
observation for which Kafka did not answer changes none of the four (it counts as a failed
refresh), so they always come from one observation.
headrace_reconciliation_day_events{day, side} has the same sides by the UTC day events entered
raw, for the last 7 days (headrace.audit.reconciliation_days).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import duckdb
from prometheus_client import Counter, Gauge
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from headrace.audit.reconciliation import Reconciliation

log = logging.getLogger(__name__)

RECENT_DAYS = 7
# Rows counted by their own query; fact and duplicate rows are the observation's sides.
OTHER_TABLES = ("account_dimension", "time_dimension", "transaction_daily_summary", "load_batch")
FRESHNESS_SQL = """
SELECT (SELECT epoch(max(event_time)) FROM transaction_fact),
       (SELECT epoch(max(committed_at)) FROM load_batch)
"""

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
    """How often the slower warehouse metrics are refreshed (env prefix
    HEADRACE_WAREHOUSE_METRICS_)."""

    model_config = SettingsConfigDict(env_prefix="HEADRACE_WAREHOUSE_METRICS_", extra="ignore")

    interval_seconds: float = Field(
        15.0,
        description="Shortest time between two refreshes of rows, freshness and the reconciliation "
        "by day (the reconciliation in total follows every summarizer refresh).",
    )


class WarehouseMetrics:
    """The gauges above, exported from the summarizer's observations."""

    def __init__(self, interval_seconds: float | None = None) -> None:
        if interval_seconds is None:
            interval_seconds = WarehouseMetricsSettings().interval_seconds
        self.interval_seconds = interval_seconds
        self._last_full = float("-inf")  # time.monotonic() of the last complete refresh

    def days_due(self) -> int:
        """How many recent days the next observation should balance (0: not due yet)."""
        due = time.monotonic() - self._last_full >= self.interval_seconds
        return RECENT_DAYS if due else 0

    def export(
        self, connection: Callable[[], duckdb.DuckDBPyConnection], seen: Reconciliation
    ) -> None:
        """Show an observation; one with days also refreshes rows and freshness (read through
        `connection()`). Never raises: the last values stay exported."""
        PENDING_SUMMARY.set(seen.unsummarized_batches)
        if seen.events_in is None:
            self.failed("Kafka did not say what entered raw")
            return
        for side, n in seen.sides().items():
            RECONCILIATION.labels(side).set(n)
        # The observation counted these two anyway: they follow every one, so the rows gauge
        # never disagrees with the reconciliation's fact side.
        ROWS.labels("transaction_fact").set(seen.fact_rows)
        ROWS.labels("transaction_duplicate").set(seen.duplicates)
        if seen.days is None:
            return
        RECONCILIATION_DAY.clear()  # days that fell out of the window go away
        for day, balance in seen.days.items():
            for side, n in balance.sides().items():
                RECONCILIATION_DAY.labels(day.isoformat(), side).set(n)
        try:
            self._tables(connection())
        except duckdb.Error as exc:
            self.failed(str(exc))
            return
        self._last_full = time.monotonic()
        REFRESHED.set_to_current_time()

    def failed(self, why: str) -> None:
        REFRESH_FAILURES.inc()
        log.warning("warehouse metrics not refreshed: %s", (why.splitlines() or [""])[0])

    def _tables(self, con: duckdb.DuckDBPyConnection) -> None:
        counts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in OTHER_TABLES)
        rows = {str(t): int(n) for t, n in con.execute(counts).fetchall()}
        newest, last_load = con.execute(FRESHNESS_SQL).fetchone() or (None, None)
        for table, n in rows.items():
            ROWS.labels(table).set(n)
        if newest is not None:
            NEWEST_EVENT.set(newest)
        if last_load is not None:
            LAST_LOAD.set(last_load)
