"""The reconciliation by arrival day: the balance of each recent UTC day, for
headrace.audit.reconciliation.observe.

"In" for a day is what raw received that day: per partition, the offset of the first record at or
after the day's end minus the one at or after its start (Kafka's offsets-for-times). Loaded events
carry raw's timestamp as `ingested_at`; error records carry it as `source_timestamp_ms`. A day
that is still settling shows a gap that closes once everything from it is placed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
from confluent_kafka.admin import AdminClient, OffsetSpec

from headrace.kafka import offsets
from headrace.lake.error_zone import ErrorZoneTally


def day_starts(today: date, days: int) -> list[datetime]:
    """Midnights (UTC) from `days` days ago up to and including tomorrow's (none for no days)."""
    if days <= 0:
        return []
    first = today - timedelta(days=days - 1)
    return [
        datetime(d.year, d.month, d.day, tzinfo=UTC)
        for d in (first + timedelta(n) for n in range(days + 1))
    ]


def placed_by_day(
    con: duckdb.DuckDBPyConnection, errors: ErrorZoneTally, bounds: list[datetime]
) -> dict[date, tuple[int, int, int]]:
    """Fact rows, duplicates and error records of each day between `bounds` (`errors` is up to
    date)."""
    if not bounds:
        return {}
    rows = con.execute(
        """SELECT CAST(ingested_at AT TIME ZONE 'UTC' AS DATE), 'fact', count(*)
           FROM transaction_fact WHERE ingested_at >= $since GROUP BY ALL
           UNION ALL
           SELECT CAST(ingested_at AT TIME ZONE 'UTC' AS DATE), 'duplicate', count(*)
           FROM transaction_duplicate WHERE ingested_at >= $since GROUP BY ALL""",
        {"since": bounds[0]},
    ).fetchall()
    loaded = {(d, side): int(n) for d, side, n in rows}
    days = [b.date() for b in bounds[:-1]]
    rejected = errors.by_arrival_day(days)
    return {
        d: (loaded.get((d, "fact"), 0), loaded.get((d, "duplicate"), 0), rejected[d]) for d in days
    }


def in_by_day(admin: AdminClient, topic: str, bounds: list[datetime]) -> dict[date, int]:
    """Messages that entered `topic` on each day between `bounds`."""
    if not bounds:
        return {}
    keys = [(topic, p) for p in offsets.partitions(admin, topic)]
    latest = offsets.offsets(admin, keys, OffsetSpec.latest())
    # The first offset at or after each midnight; -1 (none yet) is the partition's end.
    at = [
        offsets.offsets(admin, keys, OffsetSpec.for_timestamp(int(b.timestamp() * 1000)))
        for b in bounds
    ]
    return {
        start.date(): sum(
            (at[i + 1][k] if at[i + 1][k] >= 0 else latest[k])
            - (at[i][k] if at[i][k] >= 0 else latest[k])
            for k in keys
        )
        for i, start in enumerate(bounds[:-1])
    }
