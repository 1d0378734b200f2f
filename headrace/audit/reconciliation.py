"""What landed where: the counts behind `headrace report`, the demo and the integration tests.

in = fact + duplicates + error zone: every event acknowledged on raw is either a fact row, a
recorded duplicate of one, or a record in the error zone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from headrace.kafka import clients as kafka_clients
from headrace.kafka import offsets
from headrace.kafka.topics import Topics
from headrace.lake import bookkeeping, raw_zone
from headrace.lake.bucket import Bucket
from headrace.lake.error_zone import ErrorZoneTally


@dataclass
class Counts:
    raw_in: int
    raw_zone: int
    fact_rows: int
    duplicates: int
    error_zone: int
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    unsummarized_batches: int = 0

    @property
    def reconciled(self) -> bool:
        return self.raw_in == self.fact_rows + self.duplicates + self.error_zone

    @property
    def settled(self) -> bool:
        """Everything that entered raw is staged, placed, and summarized."""
        return self.reconciled and self.raw_zone == self.raw_in and self.unsummarized_batches == 0


def count(con: duckdb.DuckDBPyConnection, bucket: Bucket, bootstrap: str, topics: Topics) -> Counts:
    fact, dups = con.execute(
        "SELECT (SELECT count(*) FROM transaction_fact), "
        "(SELECT count(*) FROM transaction_duplicate)"
    ).fetchone() or (0, 0)
    tally = ErrorZoneTally(bucket)
    tally.update(con)
    errors = tally.by_reason()
    return Counts(
        raw_in=offsets.appended(kafka_clients.admin(bootstrap), topics.raw),
        raw_zone=raw_zone.count(con, bucket),
        fact_rows=int(fact),
        duplicates=int(dups),
        error_zone=sum(errors.values()),
        errors_by_reason=errors,
        unsummarized_batches=bookkeeping.unsummarized_count(con),
    )
