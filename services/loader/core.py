"""Pure loading steps: decode a batch into Arrow, and the SQL that lands it in the star schema.

Nothing here imports Kafka. The SQL runs inside the runner's warehouse transaction against the
registered Arrow table `batch`; dimension keys are derived from the data (time_id = yyyymmdd,
account_id = keyed hash of the account number), so every replica computes the same keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

BATCH_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.int64()),
        ("amount", pa.float64()),
        ("processing_duration", pa.float64()),
        ("status", pa.string()),
        ("source_system", pa.string()),
        ("account_number", pa.string()),
        ("account_type", pa.string()),
        ("customer_region", pa.string()),
        ("event_time", pa.timestamp("us", tz="UTC")),
        ("channel", pa.string()),  # v2; a v1 record has none and loads as NULL
        ("source_topic", pa.string()),
        ("source_partition", pa.int32()),
        ("source_offset", pa.int64()),
        ("ingested_at", pa.timestamp("ms", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class Source:
    topic: str
    partition: int
    offset: int
    # When the event entered raw (the validator carries raw's timestamp onto validated): the day
    # a reconciliation by arrival day counts it in.
    ingested_ms: int | None = None


def to_arrow(records: Iterable[tuple[dict[str, Any], Source]]) -> pa.Table:
    rows = [
        {
            **r,
            "source_topic": s.topic,
            "source_partition": s.partition,
            "source_offset": s.offset,
            "ingested_at": s.ingested_ms,
        }
        for r, s in records
    ]
    return pa.Table.from_pylist(rows, schema=BATCH_SCHEMA)


# First copy of a transaction_id wins: earlier batches over this one, and within the batch the
# lowest (partition, offset). Later copies are recorded in transaction_duplicate.
# Each entry is one statement; $salt, $batch_id and $load_ts are bound by the runner.
STAGE_SQL = (
    """
    CREATE OR REPLACE TEMP TABLE staged AS
    SELECT b.*,
           CAST(strftime(b.event_time AT TIME ZONE 'UTC', '%Y%m%d') AS INTEGER) AS time_id,
           CAST(md5_number_lower($salt || b.account_number) >> 1 AS BIGINT) AS account_id,
           repeat('*', length(b.account_number) - 4) || right(b.account_number, 4) AS masked,
           row_number() OVER (PARTITION BY b.transaction_id
                              ORDER BY b.source_partition, b.source_offset) = 1 AS first_in_batch
    FROM batch b
    """,
    """
    CREATE OR REPLACE TEMP TABLE fresh AS
    SELECT s.* FROM staged s
    ANTI JOIN (SELECT transaction_id FROM transaction_fact
               WHERE transaction_id IN (SELECT transaction_id FROM staged)) f
    USING (transaction_id)
    WHERE s.first_in_batch
    """,
)

LAND_SQL = (
    """
    INSERT INTO transaction_duplicate
        (transaction_id, batch_id, source_topic, source_partition, source_offset, ingested_at)
    SELECT s.transaction_id, $batch_id, s.source_topic, s.source_partition, s.source_offset,
           s.ingested_at
    FROM staged s ANTI JOIN fresh f USING (source_topic, source_partition, source_offset)
    """,
    """
    INSERT INTO time_dimension
    SELECT DISTINCT time_id, d, year(d), quarter(d), month(d), day(d), isodow(d), isodow(d) >= 6
    FROM (SELECT time_id, CAST(event_time AT TIME ZONE 'UTC' AS DATE) AS d FROM fresh)
    WHERE time_id NOT IN (SELECT time_id FROM time_dimension)
    """,
    """
    INSERT INTO account_dimension
    SELECT account_id, any_value(masked), any_value(account_type), any_value(customer_region)
    FROM fresh
    WHERE account_id NOT IN (SELECT account_id FROM account_dimension)
    GROUP BY account_id
    """,
    """
    INSERT INTO transaction_fact
        (transaction_id, amount, processing_duration, status, source_system, load_timestamp,
         time_id, account_id, event_time, batch_id, source_topic, source_partition,
         source_offset, ingested_at, channel)
    SELECT transaction_id, amount, processing_duration, status, source_system, $load_ts,
           time_id, account_id, event_time, $batch_id, source_topic, source_partition,
           source_offset, ingested_at, channel
    FROM fresh
    """,
)
