"""The raw zone, read in one place: every message of the raw topic, as the stager wrote it.

Lines are `services.stager.core.raw_line`: topic, partition, offset, timestamp_ms, the key and
value as UTF-8 text (or `<name>_base64`), and the headers as a JSON object of text values.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

import duckdb

from headrace.lake import zone_files
from headrace.lake.bucket import Bucket

PATTERN = "raw/date=*/*.jsonl"

# `partition` and `offset` are SQL keywords, so a scan renames them raw_partition, raw_offset.
SELECT = """topic, "partition" AS raw_partition, "offset" AS raw_offset, timestamp_ms, key,
headers, value, value_base64"""
COLUMNS = (
    "{'topic': 'VARCHAR', 'partition': 'INTEGER', 'offset': 'BIGINT', 'timestamp_ms': 'BIGINT', "
    "'key': 'VARCHAR', 'headers': 'JSON', 'value': 'VARCHAR', 'value_base64': 'VARCHAR'}"
)


def read_json() -> str:
    """A `read_json(?, ...)` table function over a list of raw-zone files (the one parameter)."""
    return f"read_json(?, format = 'newline_delimited', columns = {COLUMNS})"


def files(
    bucket: Bucket, since: date | None = None, until: date | None = None, also: Iterable[date] = ()
) -> list[str]:
    """Raw-zone files that can hold messages that entered raw in the range or on the days `also`."""
    return zone_files.dated_files(bucket, PATTERN, since, until, also)


def records(bucket: Bucket) -> list[dict[str, Any]]:
    """Every message of the raw zone, parsed (for checks that look at each one)."""
    return zone_files.records(bucket, PATTERN)


def count(con: duckdb.DuckDBPyConnection, bucket: Bucket) -> int:
    """Messages in the raw zone: one DuckDB scan of every file, reading one key of each line."""
    found = bucket.glob(PATTERN)
    if not found:  # read_json refuses an empty list of files
        return 0
    row = con.execute(
        "SELECT count(*) FROM read_json(?, format = 'newline_delimited', "
        "columns = {'offset': 'BIGINT'})",
        [found],
    ).fetchone()
    return int(row[0]) if row else 0
