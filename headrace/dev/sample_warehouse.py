"""Synthetic warehouse rows written with SQL alone (range()), for tests and benchmarks.

`load` appends one batch the way the loader's transaction leaves it: fact rows, the dimension
rows they need, and a load_batch row naming the days touched, so the summarizer refreshes those
days. Values are derived from hashes of the row number: the same arguments give the same rows,
and millions of rows take seconds (no Python per row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

REGIONS = ("NA", "EU", "APAC", "LATAM", "MEA")
ACCOUNT_TYPES = ("CHECKING", "SAVINGS", "CREDIT", "BUSINESS")
STATUSES = ("PENDING", "COMPLETED", "FAILED", "REVERSED", "CANCELLED")
SOURCES = ("pos", "web", "mobile", "atm", "batch-core")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Batch:
    batch_id: str
    rows: int
    first_id: int
    start: datetime  # event times fall in [start, end)
    end: datetime
    accounts: int = 1_000
    seed: int = 0


# The UTC day comes from the event's microseconds since the epoch, as in the loader: `AT TIME
# ZONE` and strftime over every row cost ~6 s per 10M rows (10x this), and the statements
# below all need the day.
FACT_SQL = """
CREATE OR REPLACE TEMP TABLE synthetic_fact AS
SELECT *, year(d) * 10000 + month(d) * 100 + day(d) AS time_id
FROM (SELECT *, CAST(make_timestamp($start_us + offset_us) AS DATE) AS d
FROM (SELECT $first_id + i AS transaction_id,
       round(1 + h_amount % 499900 / 100.0, 2) AS amount,
       CASE WHEN h_duration % 20 = 0 THEN NULL ELSE h_duration % 3000 / 1000.0 END
           AS processing_duration,
       $statuses[1 + h_status % 5] AS status,
       $sources[1 + h_status // 5 % 5] AS source_system,
       CAST($load_ts AS TIMESTAMPTZ) AS load_timestamp,
       1 + h_account % $accounts AS account_id,
       CAST($start AS TIMESTAMPTZ) + to_microseconds(offset_us) AS event_time,
       offset_us,
       $batch_id AS batch_id,
       'synthetic' AS source_topic,
       0 AS source_partition,
       $first_id + i AS source_offset
FROM (SELECT i,
             CAST(hash(i, $seed, 'amount') >> 2 AS BIGINT) AS h_amount,
             CAST(hash(i, $seed, 'duration') >> 2 AS BIGINT) AS h_duration,
             CAST(hash(i, $seed, 'status') >> 2 AS BIGINT) AS h_status,
             CAST(hash(i, $seed, 'account') >> 2 AS BIGINT) AS h_account,
             CAST(hash(i, $seed, 'time') >> 2 AS BIGINT) % $span AS offset_us
      FROM range($rows) r(i))))
"""

LAND_SQL = (
    """
    INSERT INTO time_dimension
    SELECT time_id, d, year(d), quarter(d), month(d), day(d), isodow(d), isodow(d) >= 6
    FROM (SELECT DISTINCT time_id, d FROM synthetic_fact)
    WHERE time_id NOT IN (SELECT time_id FROM time_dimension)
    """,
    """
    INSERT INTO account_dimension
    SELECT a, '********' || lpad(CAST(a % 10000 AS VARCHAR), 4, '0'),
           $types[1 + a // 5 % 4], $regions[1 + a % 5]
    FROM (SELECT DISTINCT account_id AS a FROM synthetic_fact)
    WHERE a NOT IN (SELECT account_id FROM account_dimension)
    """,
    """
    INSERT INTO transaction_fact
        (transaction_id, amount, processing_duration, status, source_system, load_timestamp,
         time_id, account_id, event_time, batch_id, source_topic, source_partition,
         source_offset, ingested_at, time_bucket)
    SELECT transaction_id, amount, processing_duration, status, source_system, load_timestamp,
           time_id, account_id, event_time, batch_id, source_topic, source_partition,
           source_offset, load_timestamp, time_id
    FROM synthetic_fact
    """,
    """
    INSERT INTO load_batch
    SELECT $batch_id, 'synthetic', '[]', count(*), 0,
           list(DISTINCT time_id ORDER BY 1),
           CAST($load_ts AS TIMESTAMPTZ)
    FROM synthetic_fact
    """,
)


def load(con: duckdb.DuckDBPyConnection, batch: Batch, load_ts: datetime | None = None) -> None:
    """Append `batch` (run it inside a transaction, as the loader does)."""
    params = _params(batch, load_ts or datetime.now(UTC))
    for sql in (FACT_SQL, *LAND_SQL):
        con.execute(sql, _used(sql, params))
    con.execute("DROP TABLE synthetic_fact")


def fact_statement(batch: Batch) -> tuple[str, dict[str, object]]:
    """The statement (and its parameters) that builds the temp table `synthetic_fact` alone."""
    return FACT_SQL, _used(FACT_SQL, _params(batch, datetime.now(UTC)))


def _used(sql: str, params: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in params.items() if f"${k}" in sql}


def _params(batch: Batch, load_ts: datetime) -> dict[str, object]:
    return {
        "first_id": batch.first_id,
        "seed": batch.seed,
        "statuses": list(STATUSES),
        "sources": list(SOURCES),
        "load_ts": load_ts,
        "accounts": batch.accounts,
        "start": batch.start,
        "start_us": (batch.start - EPOCH) // timedelta(microseconds=1),
        "span": (batch.end - batch.start) // timedelta(microseconds=1),
        "batch_id": batch.batch_id,
        "rows": batch.rows,
        "types": list(ACCOUNT_TYPES),
        "regions": list(REGIONS),
    }
