"""When and what to publish in the BI snapshot: marts, errors by reason, the reconciliation.

The summarizer calls `publish()` after each refresh. A snapshot is written when something it shows
changed (a warehouse commit, new error-zone files, more events in raw) and the last one is older
than the minimum interval; otherwise the call only costs a listing and two small queries.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from headrace.kafka import clients as kafka_clients
from headrace.kafka import offsets
from headrace.lake import warehouse
from headrace.lake.bucket import Bucket
from headrace.lake.error_zone import ErrorZoneTally
from services.summarizer import snapshot

log = logging.getLogger(__name__)

COUNTS_SQL = """
SELECT (SELECT id FROM lake.current_snapshot()),
       (SELECT count(*) FROM transaction_fact),
       (SELECT count(*) FROM transaction_duplicate)
"""

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


@dataclass(frozen=True)
class Reconciliation:
    """in = fact + duplicates + error zone, as observed at one moment (placed counts first)."""

    observed_at: datetime
    events_in: int | None
    fact_rows: int
    duplicates: int
    error_zone: int

    @property
    def in_flight(self) -> int | None:
        placed = self.fact_rows + self.duplicates + self.error_zone
        return None if self.events_in is None else self.events_in - placed

    def to_arrow(self) -> pa.Table:
        row = {
            "observed_at": self.observed_at,
            "events_in": self.events_in,
            "fact_rows": self.fact_rows,
            "duplicates": self.duplicates,
            "error_zone": self.error_zone,
            "in_flight": self.in_flight,
            "holds": self.in_flight == 0 if self.in_flight is not None else None,
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
    bucket: Bucket
    target: Path
    bootstrap: str
    raw_topic: str
    min_interval: float = 2.0
    on_retry: Callable[[], None] | None = None  # e.g. reconnect before a retry
    tally: ErrorZoneTally = field(init=False)
    last_state: tuple[object, ...] | None = None
    last_written: float = 0.0  # time.monotonic() of the last published snapshot
    _admin: AdminClient | None = None

    def __post_init__(self) -> None:
        self.tally = ErrorZoneTally(self.bucket)

    def publish(self) -> bool:
        """Write the snapshot if what it shows changed and the interval passed; True if written."""
        self.tally.update(self.connection())
        snapshot_id, fact, dups = warehouse.with_retries(
            lambda: self.connection().execute(COUNTS_SQL).fetchone() or (0, 0, 0),
            on_retry=self.on_retry,
        )
        # Read after everything placed was counted, so events in is never behind them.
        events_in = self.events_in()
        state = (snapshot_id, self.tally.total(), events_in)
        if state == self.last_state and self.target.exists():
            return False
        if time.monotonic() - self.last_written < self.min_interval:
            return False
        recon = Reconciliation(
            datetime.now(UTC), events_in, int(fact), int(dups), self.tally.total()
        )
        extras = {
            "error_daily_reason": error_daily_reason(self.tally),
            "reconciliation": recon.to_arrow(),
        }
        started = time.monotonic()
        warehouse.with_retries(lambda: self._write(extras), attempts=5, on_retry=self.on_retry)
        self.last_state, self.last_written = state, time.monotonic()
        log.debug("snapshot %s written in %.3fs", self.target, self.last_written - started)
        return True

    def _write(self, extras: dict[str, pa.Table]) -> None:
        con = self.connection()
        detail = snapshot.fact_files(con) if self.bucket.is_local else None
        snapshot.write(con, self.target, extras, detail)

    def events_in(self) -> int | None:
        """Messages ever appended to raw (sum of high watermarks), or None if Kafka won't say."""
        try:
            self._admin = self._admin or kafka_clients.admin(self.bootstrap)
            return offsets.appended(self._admin, self.raw_topic)
        except KafkaException as exc:
            log.warning("cannot read the raw topic's watermarks: %s", exc)
            return None

    def close(self) -> None:
        self._admin = None
