"""The raw zone as DuckDB reads it: every message of the raw topic, as the stager wrote it.

Lines are `services.stager.core.raw_line`: topic, partition, offset, timestamp_ms, the key and
value as UTF-8 text (or `<name>_base64`), and the headers as a JSON object of text values.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from headrace.lake.bucket import Bucket
from headrace.lake.error_zone import dated_files

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
    return dated_files(bucket, PATTERN, since, until, also)
