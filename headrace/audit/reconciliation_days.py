"""The reconciliation by arrival day: in = fact + duplicates + error for each recent UTC day.

"In" for a day is what raw received that day: per partition, the offset of the first record at or
after the day's end minus the one at or after its start (Kafka's offsets-for-times). Loaded events
carry raw's timestamp as `ingested_at`; error records carry it as `source_timestamp_ms`. A day
that is still settling shows a gap that closes once everything from it is placed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
from confluent_kafka.admin import AdminClient, OffsetSpec

from headrace.kafka.offsets import topic_offsets
from headrace.lake.error_zone import ErrorZoneTally

SIDES = ("in", "fact", "duplicate", "error")


def day_starts(today: date, days: int) -> list[datetime]:
    """Midnights (UTC) from `days` days ago up to and including tomorrow's."""
    first = today - timedelta(days=days - 1)
    return [
        datetime(d.year, d.month, d.day, tzinfo=UTC)
        for d in (first + timedelta(n) for n in range(days + 1))
    ]


def raw_in_by_day(admin: AdminClient, topic: str, bounds: list[datetime]) -> dict[date, int]:
    latest = topic_offsets(admin, topic, OffsetSpec.latest())
    partitions = list(latest)
    at = [
        topic_offsets(admin, topic, OffsetSpec.for_timestamp(int(b.timestamp() * 1000)))
        for b in bounds
    ]
    counts = {}
    for i, start in enumerate(bounds[:-1]):
        counts[start.date()] = sum(
            (at[i + 1][p] if at[i + 1][p] >= 0 else latest[p])
            - (at[i][p] if at[i][p] >= 0 else latest[p])
            for p in partitions
        )
    return counts


def loaded_by_day(con: duckdb.DuckDBPyConnection, since: datetime) -> dict[tuple[date, str], int]:
    rows = con.execute(
        """SELECT CAST(ingested_at AT TIME ZONE 'UTC' AS DATE), 'fact', count(*)
           FROM transaction_fact WHERE ingested_at >= $since GROUP BY ALL
           UNION ALL
           SELECT CAST(ingested_at AT TIME ZONE 'UTC' AS DATE), 'duplicate', count(*)
           FROM transaction_duplicate WHERE ingested_at >= $since GROUP BY ALL""",
        {"since": since},
    ).fetchall()
    return {(d, side): int(n) for d, side, n in rows}


def by_day(
    con: duckdb.DuckDBPyConnection,
    admin: AdminClient,
    errors: ErrorZoneTally,
    raw_topic: str,
    days: int = 7,
    today: date | None = None,
) -> dict[date, dict[str, int]]:
    """Each recent day's sides: {"in", "fact", "duplicate", "error"} -> events (`errors` is
    up to date)."""
    bounds = day_starts(today or datetime.now(UTC).date(), days)
    raw_in = raw_in_by_day(admin, raw_topic, bounds)
    loaded = loaded_by_day(con, bounds[0])
    errors_by_day = errors.by_arrival_day(b.date() for b in bounds[:-1])
    return {
        d: {
            "in": raw_in[d],
            "fact": loaded.get((d, "fact"), 0),
            "duplicate": loaded.get((d, "duplicate"), 0),
            "error": errors_by_day.get(d, 0),
        }
        for d in raw_in
    }
