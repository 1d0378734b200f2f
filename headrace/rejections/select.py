"""Rejected events, one row each, with their original bytes: what `headrace errors` shows and
`headrace reprocess` picks from.

A rejected event is either an error-zone record (the validator refused it) or a row of
`transaction_duplicate` (the loader refused it because its transaction_id was already loaded;
reason DUPLICATE). Everything is joined in DuckDB, in temp tables of the connection:

  error_record     the error zone's records (headrace.lake.error_zone)
  duplicate_row    transaction_duplicate rows, with the arrival day of their raw message
  raw_record       the raw-zone messages the others point at: headers (source file, the
                   `headrace.reprocess_of` mark of a republished copy) and a duplicate's bytes
  reprocess_attempt, reprocess_copy, reprocess_state   the ledger (headrace.rejections.ledger)
  rejection        one row per rejected event that is not itself a reprocess copy
  selected         the rejections the Selection asks for

Finding a duplicate's raw message. transaction_duplicate keeps the *validated* topic's partition
and offset; the validator writes each event to the same partition number but the offsets differ
(transaction markers, aborted batches). It also keeps `ingested_at`, raw's timestamp carried
through. So a duplicate is matched to the raw messages with the same partition, transaction_id
(the key, else the JSON value's field) and timestamp that were not rejected; when several copies
share all three, the k-th placed copy (fact or duplicate, by validated offset) is the k-th raw
copy by raw offset, since the validator keeps each partition's order.

The day of an event is the UTC day it entered raw (the error record's `source_timestamp_ms`, the
duplicate's `ingested_at`), as in the reconciliation by day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import duckdb

from headrace.lake import error_zone, raw_zone
from headrace.lake.bucket import Bucket
from headrace.rejections import ledger as reprocess_ledger
from headrace.runtime.errors import OperatorError

DUPLICATE = "DUPLICATE"
REPROCESS_OF = "headrace.reprocess_of"


@dataclass(frozen=True)
class Selection:
    """Which rejections: arrival days (inclusive), reason codes, sources. Empty: all."""

    since: date | None = None
    until: date | None = None
    reasons: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        day: date | None = None,
        since: date | None = None,
        until: date | None = None,
        reasons: list[str] | None = None,
        sources: list[str] | None = None,
    ) -> Selection:
        if day and (since or until):
            raise OperatorError("give --date, or --since/--until, not both")
        if since and until and since > until:
            raise OperatorError(f"--since {since} is after --until {until}")
        return cls(
            since=day or since,
            until=day or until,
            reasons=tuple(r.upper() for r in reasons or ()),
            sources=tuple(sources or ()),
        )


MACROS = [
    # The transaction's source_system where the original bytes are JSON that has one.
    """CREATE OR REPLACE TEMP MACRO hr_source_system(v) AS
       CASE WHEN json_valid(v) THEN json_extract_string(v, '$.source_system') END""",
    # Where the producer got it: the file it replayed, or `http`.
    """CREATE OR REPLACE TEMP MACRO hr_origin(h) AS
       coalesce(json_extract_string(h, '$."headrace.source_file"'),
                json_extract_string(h, '$."headrace.source"'))""",
    f"""CREATE OR REPLACE TEMP MACRO hr_reprocess_of(h) AS
        json_extract_string(h, '$."{REPROCESS_OF}"')""",
]

ERROR_RECORD = f"""
CREATE OR REPLACE TEMP TABLE error_record AS
SELECT coalesce(reason, 'UNKNOWN') AS reason, problems,
       problems[1].field AS field, problems[1].message AS message,
       source_topic, source_partition, source_offset,
       coalesce(CAST(make_timestamp(source_timestamp_ms * 1000) AS DATE),
                CAST(regexp_extract(filename, '/date=(\\d{{4}}-\\d{{2}}-\\d{{2}})/', 1) AS DATE))
           AS day,
       original, original_base64
FROM {error_zone.read_json(filename=True)}
"""
EMPTY_ERROR_RECORD = """
CREATE OR REPLACE TEMP TABLE error_record (
    reason VARCHAR, problems STRUCT(reason VARCHAR, field VARCHAR, message VARCHAR)[],
    field VARCHAR, message VARCHAR, source_topic VARCHAR, source_partition INTEGER,
    source_offset BIGINT, day DATE, original VARCHAR, original_base64 VARCHAR)
"""

DUPLICATE_ROW = """
CREATE OR REPLACE TEMP TABLE duplicate_row AS
SELECT transaction_id, source_topic AS validated_topic, source_partition,
       source_offset AS validated_offset, epoch_ms(ingested_at) AS ingested_ms,
       CAST(ingested_at AT TIME ZONE 'UTC' AS DATE) AS day
FROM transaction_duplicate
WHERE ($since::TIMESTAMPTZ IS NULL OR ingested_at >= $since)
  AND ($until::TIMESTAMPTZ IS NULL OR ingested_at < $until)
"""

# Only the raw messages something points at: an error record's source, a duplicate's candidates,
# and republished copies (their header marks them).
RAW_RECORD = f"""
CREATE OR REPLACE TEMP TABLE raw_record AS
SELECT *, hr_reprocess_of(headers) AS reprocess_of,
       coalesce(try_cast(key AS BIGINT),
                CASE WHEN json_valid(value)
                     THEN try_cast(json_extract_string(value, '$.transaction_id') AS BIGINT)
                END) AS transaction_id
FROM (SELECT {raw_zone.SELECT} FROM {raw_zone.read_json()}) r
WHERE EXISTS (SELECT 1 FROM error_record e WHERE e.source_topic = r.topic
              AND e.source_partition = r.raw_partition AND e.source_offset = r.raw_offset)
   OR EXISTS (SELECT 1 FROM duplicate_row d WHERE d.source_partition = r.raw_partition
              AND d.ingested_ms = r.timestamp_ms)
   OR hr_reprocess_of(headers) IS NOT NULL
"""
EMPTY_RAW_RECORD = """
CREATE OR REPLACE TEMP TABLE raw_record (
    topic VARCHAR, raw_partition INTEGER, raw_offset BIGINT, timestamp_ms BIGINT, key VARCHAR,
    headers JSON, value VARCHAR, value_base64 VARCHAR, reprocess_of VARCHAR,
    transaction_id BIGINT)
"""

DUPLICATE_SOURCE = """
CREATE OR REPLACE TEMP TABLE duplicate_source AS
WITH placed AS (
    SELECT transaction_id, source_partition, ingested_ms, validated_offset, validated_topic,
           day, true AS is_duplicate
    FROM duplicate_row
    UNION ALL
    SELECT transaction_id, source_partition, epoch_ms(ingested_at), source_offset, source_topic,
           NULL, false
    FROM transaction_fact WHERE transaction_id IN (SELECT transaction_id FROM duplicate_row)
), placed_ranked AS (
    SELECT *, row_number() OVER (PARTITION BY transaction_id, source_partition, ingested_ms
                                 ORDER BY validated_offset) AS k
    FROM placed
), raw_ranked AS (
    SELECT *, row_number() OVER (PARTITION BY transaction_id, raw_partition, timestamp_ms
                                 ORDER BY raw_offset) AS k
    FROM raw_record r
    WHERE NOT EXISTS (SELECT 1 FROM error_record e WHERE e.source_topic = r.topic
                      AND e.source_partition = r.raw_partition AND e.source_offset = r.raw_offset)
)
SELECT p.transaction_id, p.day, p.validated_topic, p.source_partition, p.validated_offset,
       r.topic, r.raw_offset, r.headers, r.value, r.value_base64, r.reprocess_of
FROM placed_ranked p
LEFT JOIN raw_ranked r ON r.transaction_id = p.transaction_id
     AND r.raw_partition = p.source_partition AND r.timestamp_ms = p.ingested_ms AND r.k = p.k
WHERE p.is_duplicate
"""

# Every copy republished for an original, from the ledger or found on raw by its header (a run
# that died between the acknowledgements and its ledger write leaves only the latter).
REPROCESS_COPY = """
CREATE OR REPLACE TEMP TABLE reprocess_copy AS
SELECT position, copy_topic, copy_partition, copy_offset, max(transaction_id) AS transaction_id
FROM (
    SELECT position, republished_topic AS copy_topic, republished_partition AS copy_partition,
           republished_offset AS copy_offset, transaction_id
    FROM reprocess_attempt WHERE outcome = 'republished'
    UNION ALL
    SELECT reprocess_of, topic, raw_partition, raw_offset, transaction_id
    FROM raw_record WHERE reprocess_of IS NOT NULL
)
GROUP BY ALL
"""

# Per original: its copies, how many the validator rejected again, whether one is still live
# (placed, or on its way: republishing it again would only make a duplicate), whether one is in
# the fact table, and the ledger's last word on it.
REPROCESS_STATE = """
CREATE OR REPLACE TEMP TABLE reprocess_state AS
WITH copy_state AS (
    SELECT c.position, c.transaction_id,
           e.source_offset IS NOT NULL AS rejected_again
    FROM reprocess_copy c
    LEFT JOIN error_record e ON e.source_topic = c.copy_topic
         AND e.source_partition = c.copy_partition AND e.source_offset = c.copy_offset
), loaded AS (
    SELECT DISTINCT transaction_id FROM transaction_fact
    WHERE transaction_id IN (SELECT transaction_id FROM reprocess_copy)
), per_copy AS (
    SELECT position, count(*) AS copies,
           count(*) FILTER (WHERE rejected_again) AS rejected_again,
           bool_or(NOT rejected_again) AS live_copy,
           bool_or(NOT rejected_again AND l.transaction_id IS NOT NULL) AS resolved
    FROM copy_state s LEFT JOIN loaded l USING (transaction_id)
    GROUP BY position
), last_attempt AS (
    SELECT position, count(*) AS attempts, arg_max(outcome, attempted_at) AS last_outcome
    FROM reprocess_attempt GROUP BY position
)
SELECT position, coalesce(copies, 0) AS copies, coalesce(rejected_again, 0) AS rejected_again,
       coalesce(live_copy, false) AS live_copy, coalesce(resolved, false) AS resolved,
       coalesce(attempts, 0) AS attempts, last_outcome
FROM per_copy FULL JOIN last_attempt USING (position)
"""

REJECTION = """
CREATE OR REPLACE TEMP TABLE rejection AS
WITH events AS (
    SELECT 'error' AS kind, e.day, e.reason, e.field, e.message,
           list_transform(e.problems, p -> p.reason) AS problem_reasons,
           hr_source_system(e.original) AS source_system, hr_origin(r.headers) AS source_file,
           e.source_topic, e.source_partition, e.source_offset,
           e.original, e.original_base64, r.headers, NULL::BIGINT AS transaction_id,
           r.reprocess_of IS NOT NULL OR EXISTS (
               SELECT 1 FROM reprocess_copy c WHERE c.copy_topic = e.source_topic
               AND c.copy_partition = e.source_partition AND c.copy_offset = e.source_offset
           ) AS is_copy
    FROM error_record e
    LEFT JOIN raw_record r ON r.topic = e.source_topic AND r.raw_partition = e.source_partition
         AND r.raw_offset = e.source_offset
    UNION ALL BY NAME
    SELECT 'duplicate' AS kind, day, 'DUPLICATE' AS reason, 'transaction_id' AS field,
           'transaction_id ' || transaction_id || ' was already loaded (the first copy wins)'
               || CASE WHEN raw_offset IS NULL
                       THEN '; its raw message is not in the raw zone' ELSE '' END AS message,
           ['DUPLICATE'] AS problem_reasons,
           hr_source_system(value) AS source_system, hr_origin(headers) AS source_file,
           coalesce(topic, validated_topic) AS source_topic, source_partition,
           coalesce(raw_offset, validated_offset) AS source_offset,
           value AS original, value_base64 AS original_base64, headers, transaction_id,
           false AS is_copy
    FROM duplicate_source
)
SELECT ev.* EXCLUDE (is_copy),
       ev.source_topic || '/' || ev.source_partition || '/' || ev.source_offset AS position,
       coalesce(s.copies, 0) AS copies, coalesce(s.rejected_again, 0) AS rejected_again,
       coalesce(s.live_copy, false) AS live_copy, coalesce(s.resolved, false) AS resolved,
       coalesce(s.attempts, 0) AS attempts, s.last_outcome
FROM events ev LEFT JOIN reprocess_state s
     ON s.position = ev.source_topic || '/' || ev.source_partition || '/' || ev.source_offset
WHERE NOT ev.is_copy
"""

SELECTED = """
CREATE OR REPLACE TEMP TABLE selected AS
SELECT * FROM rejection
WHERE ($since::DATE IS NULL OR day >= $since) AND ($until::DATE IS NULL OR day <= $until)
  AND (len($reasons::VARCHAR[]) = 0 OR list_contains($reasons::VARCHAR[], reason))
  AND (len($sources::VARCHAR[]) = 0 OR list_has_any($sources::VARCHAR[],
       [source_system, source_file, source_topic, source_topic || '/' || source_partition]))
"""


def load(con: duckdb.DuckDBPyConnection, bucket: Bucket, selection: Selection) -> None:
    """Fill the temp tables above on `con`, a warehouse connection (headrace.lake.warehouse)."""
    for macro in MACROS:
        con.execute(macro)
    reprocess_ledger.load(con, bucket)
    # Copies are staged on the days they were republished, which the selection may not cover.
    days = con.execute(
        "SELECT DISTINCT CAST(attempted_at AT TIME ZONE 'UTC' AS DATE) FROM reprocess_attempt"
    ).fetchall()
    also = [d for (d,) in days if d is not None]
    errors = error_zone.files(bucket, selection.since, selection.until, also)
    _create(con, ERROR_RECORD, EMPTY_ERROR_RECORD, errors)
    con.execute(DUPLICATE_ROW, _bounds(selection))
    raws = raw_zone.files(bucket, selection.since, selection.until, also)
    _create(con, RAW_RECORD, EMPTY_RAW_RECORD, raws)
    for statement in (DUPLICATE_SOURCE, REPROCESS_COPY, REPROCESS_STATE, REJECTION):
        con.execute(statement)
    con.execute(
        SELECTED,
        {
            "since": selection.since,
            "until": selection.until,
            "reasons": list(selection.reasons),
            "sources": list(selection.sources),
        },
    )


def _create(con: duckdb.DuckDBPyConnection, scan: str, empty: str, files: list[str]) -> None:
    # read_json refuses an empty list of files: an empty table of the same shape instead.
    if files:
        con.execute(scan, [files])
    else:
        con.execute(empty)


def _bounds(selection: Selection) -> dict[str, datetime | None]:
    def midnight(d: date | None) -> datetime | None:
        return datetime.combine(d, time(), UTC) if d else None

    until = selection.until + timedelta(days=1) if selection.until else None
    return {"since": midnight(selection.since), "until": midnight(until)}


GROUPS = """
SELECT day, reason, field, source_system, source_file,
       source_topic || '/' || source_partition AS source_partition,
       count(*) AS events, count(*) FILTER (WHERE copies > 0) AS reprocessed,
       count(*) FILTER (WHERE resolved) AS resolved,
       count(*) FILTER (WHERE last_outcome = 'still_failing') AS still_failing
FROM selected GROUP BY ALL ORDER BY day, reason, field NULLS FIRST, source_system NULLS FIRST,
       source_file NULLS FIRST, source_partition NULLS FIRST
"""

BY_REASON = """
SELECT reason, count(*) AS events, count(*) FILTER (WHERE copies > 0) AS reprocessed,
       count(*) FILTER (WHERE resolved) AS resolved,
       count(*) FILTER (WHERE last_outcome = 'still_failing') AS still_failing,
       sum(rejected_again)::BIGINT AS rejected_again, sum(attempts)::BIGINT AS attempts
FROM selected GROUP BY ALL ORDER BY events DESC, reason
"""

SAMPLES = """
SELECT day, reason, field, message, problem_reasons, source_system, source_file, source_topic,
       source_partition, source_offset, transaction_id, original, original_base64, headers,
       copies, resolved, attempts, last_outcome
FROM selected ORDER BY day, reason, source_topic, source_partition, source_offset LIMIT ?
"""


def rows(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def groups(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Counts by day, reason, field (of the first problem) and source, with reprocess outcomes."""
    return rows(con, GROUPS)


def by_reason(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return rows(con, BY_REASON)


def samples(con: duckdb.DuckDBPyConnection, n: int) -> list[dict[str, Any]]:
    return rows(con, SAMPLES, [n]) if n > 0 else []
