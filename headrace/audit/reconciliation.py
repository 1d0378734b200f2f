"""What landed where, observed in one place: in = fact + duplicates + error zone.

Every event acknowledged on raw is a fact row, a recorded duplicate of one, or a record in the
error zone. `observe` counts the placed sides first and `in` last, so an event that enters raw
between the reads only ever makes `in` larger: placed > in means an event counted twice, and
in > placed events still on their way (or lost, if it stays).

One observation serves everyone who shows the reconciliation: `headrace report` and the demo
(with the raw zone, to tell that everything is also staged and summarized), the summarizer
(its gauges, headrace.audit.warehouse_metrics, and its BI snapshot's `reconciliation` table show
the same observation), `headrace check` (headrace.audit.invariants) and the tests. The
breakdown by the day events entered raw is headrace.audit.reconciliation_days.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime

import duckdb
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from headrace.audit import reconciliation_days
from headrace.kafka import offsets
from headrace.lake import bookkeeping, raw_zone
from headrace.lake.error_zone import ErrorZoneTally
from headrace.lake.warehouse import LAKE

log = logging.getLogger(__name__)

# One statement, so the sides and the bookkeeping are of the same warehouse snapshot.
PLACED_SQL = f"""
SELECT (SELECT id FROM {LAKE}.current_snapshot()),
       (SELECT count(*) FROM transaction_fact),
       (SELECT count(*) FROM transaction_duplicate),
       ({bookkeeping.UNSUMMARIZED_COUNT_SQL})
"""


@dataclass(frozen=True)
class Balance:
    """The four sides of in = fact + duplicates + error zone."""

    events_in: int | None  # None: Kafka did not say
    fact_rows: int
    duplicates: int
    error_zone: int

    @property
    def placed(self) -> int:
        return self.fact_rows + self.duplicates + self.error_zone

    @property
    def in_flight(self) -> int | None:
        """Events in raw not placed yet; negative if some event was counted twice."""
        return None if self.events_in is None else self.events_in - self.placed

    @property
    def holds(self) -> bool | None:
        return None if self.in_flight is None else self.in_flight == 0

    def sides(self) -> dict[str, int]:
        """The sides by the names the metrics use; `in` only when it is known."""
        known = {"in": self.events_in} if self.events_in is not None else {}
        return known | {
            "fact": self.fact_rows,
            "duplicate": self.duplicates,
            "error": self.error_zone,
        }


@dataclass(frozen=True)
class Reconciliation(Balance):
    """The balance over the whole history, as observed at one moment, with what explains it."""

    observed_at: datetime
    snapshot_id: int  # the warehouse snapshot the placed sides were counted in
    errors_by_reason: dict[str, int]  # the most frequent first
    unsummarized_batches: int
    raw_zone: int | None = None  # raw-zone records, when observed
    days: dict[date, Balance] | None = None  # by the UTC day events entered raw, when observed

    @property
    def settled(self) -> bool:
        """Everything that entered raw is staged, placed, and summarized."""
        return (
            self.holds is True
            and self.raw_zone == self.events_in
            and self.unsummarized_batches == 0
        )


def observe(
    con: duckdb.DuckDBPyConnection,
    errors: ErrorZoneTally,
    admin: AdminClient,
    raw_topic: str,
    *,
    days: int = 0,
    raw_zone_too: bool = False,
    today: date | None = None,
) -> Reconciliation:
    """Observe the reconciliation: the placed sides, then what entered raw.

    `errors` is brought up to date (it reads only the error-zone files that are new or changed).
    `days` > 0 adds the balance of each of that many recent days (ending today, UTC);
    `raw_zone_too` counts the raw zone as well (a scan of all of it). Should Kafka not answer,
    `events_in` is None and the balance neither holds nor fails.
    """
    row = con.execute(PLACED_SQL).fetchone()
    assert row is not None  # scalar subqueries only: always one row
    snapshot_id, fact, duplicates, unsummarized = row
    errors.update(con)
    staged = raw_zone.count(con, errors.bucket) if raw_zone_too else None
    bounds = reconciliation_days.day_starts(today or datetime.now(UTC).date(), days)
    placed_by_day = reconciliation_days.placed_by_day(con, errors, bounds)
    try:
        events_in: int | None = offsets.appended(admin, raw_topic)
        in_by_day = reconciliation_days.in_by_day(admin, raw_topic, bounds)
    except KafkaException as exc:
        log.warning("cannot read what entered %s: %s", raw_topic, exc)
        events_in, in_by_day = None, {}
    return Reconciliation(
        events_in=events_in,
        fact_rows=int(fact),
        duplicates=int(duplicates),
        error_zone=errors.total(),
        observed_at=datetime.now(UTC),
        snapshot_id=int(snapshot_id),
        errors_by_reason=errors.by_reason(),
        unsummarized_batches=int(unsummarized),
        raw_zone=staged,
        days={
            d: Balance(in_by_day.get(d), fact_d, duplicates_d, error_d)
            for d, (fact_d, duplicates_d, error_d) in placed_by_day.items()
        }
        if days
        else None,
    )
