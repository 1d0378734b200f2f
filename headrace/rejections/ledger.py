"""The reprocess ledger: one JSON line per attempt to reprocess an error record, in the bucket.

`headrace reprocess` writes `reprocess/attempts/<run-id>.<chunk>.jsonl` with `write_atomic` once
the broker has acknowledged the chunk's republished events, so a line that exists describes a
copy that is on raw. Lines are history: an attempt never rewrites or deletes an error record.

  run_id, attempted_at (RFC 3339, UTC), contract (the schema file the rules named)
  source_topic, source_partition, source_offset   the original raw message (the error record's key)
  reason                                          the error record's reason
  outcome      republished | still_failing | publish_failed
  problems     reason codes under the current contract (still_failing)
  transaction_id, republished_topic, republished_partition, republished_offset   (republished)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import duckdb
import orjson

from headrace.lake.bucket import Bucket

DIRECTORY = "reprocess/attempts"
PATTERN = f"{DIRECTORY}/*.jsonl"
REPUBLISHED, STILL_FAILING, PUBLISH_FAILED = "republished", "still_failing", "publish_failed"

COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "attempted_at": "TIMESTAMPTZ",
    "contract": "VARCHAR",
    "source_topic": "VARCHAR",
    "source_partition": "INTEGER",
    "source_offset": "BIGINT",
    "reason": "VARCHAR",
    "outcome": "VARCHAR",
    "problems": "VARCHAR[]",
    "transaction_id": "BIGINT",
    "republished_topic": "VARCHAR",
    "republished_partition": "INTEGER",
    "republished_offset": "BIGINT",
}


def new_run_id(now: datetime) -> str:
    """Sortable by time, unique across hosts."""
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def write(bucket: Bucket, run_id: str, chunk: int, attempts: Iterable[dict[str, Any]]) -> str:
    """One chunk's attempts as one object, all or nothing."""
    data = b"".join(orjson.dumps(a, option=orjson.OPT_APPEND_NEWLINE) for a in attempts)
    return bucket.write_atomic(f"{DIRECTORY}/{run_id}.{chunk:05d}.jsonl", data)


def load(con: duckdb.DuckDBPyConnection, bucket: Bucket) -> None:
    """The whole ledger as the temp table `reprocess_attempt` (small: one line per attempt),
    with `position` = "<topic>/<partition>/<offset>" of the original."""
    files = bucket.glob(PATTERN)
    columns = ", ".join(f"'{c}': '{t}'" for c, t in COLUMNS.items())
    source = (
        f"read_json(?, format = 'newline_delimited', columns = {{{columns}}})"
        if files
        else "(SELECT " + ", ".join(f"NULL::{t} AS {c}" for c, t in COLUMNS.items()) + " LIMIT 0)"
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE reprocess_attempt AS
            SELECT *, source_topic || '/' || source_partition || '/' || source_offset AS position
            FROM {source}""",
        [files] if files else [],
    )
