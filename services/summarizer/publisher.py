"""When and what to publish in the BI snapshot: marts, errors by reason, the reconciliation.

The summarizer observes the reconciliation once after each refresh (headrace.audit.
reconciliation.observe, which also brings the error-zone tally up to date) and hands that
observation to `publish()`, as it does to its gauges. A snapshot is written when something it
shows changed (a warehouse commit, more error-zone records, more events in raw) and the last one
is older than the minimum interval; otherwise the call costs nothing more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from headrace.audit.reconciliation import Reconciliation
from headrace.lake import warehouse
from headrace.lake.error_zone import ErrorZoneTally
from services.summarizer import snapshot

log = logging.getLogger(__name__)

ERROR_DAILY_REASON_SCHEMA = pa.schema(
    [("date", pa.date32()), ("reason", pa.string()), ("records", pa.int64())]
)
RECONCILIATION_SCHEMA = pa.schema(
    [
        ("observed_at", pa.timestamp("us", tz="UTC")),
        ("events_in", pa.int64()),
        ("fact_rows", pa.int64()),
        ("duplicates", pa.int64()),
        ("error_zone", pa.int64()),
        ("in_flight", pa.int64()),
        ("holds", pa.bool_()),
    ]
)


def reconciliation_table(seen: Reconciliation) -> pa.Table:
    """The snapshot's one-row `reconciliation` table."""
    row = {
        "observed_at": seen.observed_at,
        "events_in": seen.events_in,
        "fact_rows": seen.fact_rows,
        "duplicates": seen.duplicates,
        "error_zone": seen.error_zone,
        "in_flight": seen.in_flight,
        "holds": seen.holds,
    }
    return pa.Table.from_pylist([row], schema=RECONCILIATION_SCHEMA)


def error_daily_reason(tally: ErrorZoneTally) -> pa.Table:
    """The snapshot's errors by the date folder of their file and reason."""
    merged = tally.by_folder_day_and_reason()
    keys = sorted(merged)
    return pa.table(
        [[d for d, _ in keys], [r for _, r in keys], [merged[k] for k in keys]],
        schema=ERROR_DAILY_REASON_SCHEMA,
    )


@dataclass
class Publisher:
    """Publishes from the warehouse connection `connection()` gives (it changes on a reconnect)."""

    connection: Callable[[], duckdb.DuckDBPyConnection]
    errors: ErrorZoneTally  # the tally the observations bring up to date
    target: Path
    min_interval: float = 2.0
    on_retry: Callable[[], None] | None = None  # e.g. reconnect before a retry
    last_state: tuple[object, ...] | None = None
    last_written: float = 0.0  # time.monotonic() of the last published snapshot

    def publish(self, seen: Reconciliation) -> bool:
        """Write the snapshot if what it shows changed and the interval passed; True if written."""
        state = (seen.snapshot_id, seen.error_zone, seen.events_in)
        if state == self.last_state and self.target.exists():
            return False
        if time.monotonic() - self.last_written < self.min_interval:
            return False
        extras = {
            "error_daily_reason": error_daily_reason(self.errors),
            "reconciliation": reconciliation_table(seen),
        }
        started = time.monotonic()
        warehouse.with_retries(lambda: self._write(extras), attempts=5, on_retry=self.on_retry)
        self.last_state, self.last_written = state, time.monotonic()
        log.debug("snapshot %s written in %.3fs", self.target, self.last_written - started)
        return True

    def _write(self, extras: dict[str, pa.Table]) -> None:
        con = self.connection()
        detail = snapshot.fact_files(con) if self.errors.bucket.is_local else None
        snapshot.write(con, self.target, extras, detail)
