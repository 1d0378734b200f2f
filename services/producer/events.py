"""The raw message the producer publishes, its key, and JSON for rows of typed files."""

from __future__ import annotations

import base64
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec
import orjson

from headrace.codec.json_bytes import dumps_kept

BATCH_ROWS = 10_000
# librdkafka refuses a message over message.max.bytes (1,000,000 by default) when it is produced;
# keep room for the key, headers and record overhead. The validator's own SIZE rule is far lower:
# this limit only decides what can enter Kafka at all.
MAX_EVENT_BYTES = 960_000


class RawEvent(NamedTuple):
    # A NamedTuple: one is built per event, and it is several times cheaper than a dataclass.
    value: bytes
    key: bytes | None
    row: int  # 1-based line (JSONL), record (CSV, the header is 1), row (Parquet) or record (Avro)


class _KeyOnly(msgspec.Struct):
    # Decoding into this reads transaction_id and only skims the rest (still checking the syntax).
    transaction_id: Any = None


_key_decoder = msgspec.json.Decoder(_KeyOnly)


def key_of(transaction_id: Any) -> bytes | None:
    if isinstance(transaction_id, int | str) and not isinstance(transaction_id, bool):
        return str(transaction_id).encode()
    return None


def key_of_json(value: bytes) -> bytes | None:
    """The key of a JSON message, or None when it is not a JSON object with a transaction_id.

    Never raises: whatever the bytes, the message is published and the validator judges it.
    """
    try:
        return parse_object(value)
    except Exception:  # any failure only means no key: a key is an optimisation, not a check
        return None


def parse_object(value: bytes) -> bytes | None:
    """The key of a JSON object; msgspec.DecodeError/ValidationError if `value` is not one."""
    try:
        return key_of(_key_decoder.decode(value).transaction_id)
    except RecursionError:
        # msgspec follows nesting on the C stack up to Python's recursion limit (about 1,000
        # levels; the validator rejects such events as SIZE).
        raise msgspec.DecodeError(TOO_DEEP) from None
    except UnicodeDecodeError as exc:  # msgspec decodes a string of bad UTF-8 into str and fails
        raise msgspec.DecodeError(f"not UTF-8: {exc}") from None


TOO_DEEP = "JSON nested too deeply (more than about 1,000 levels)"


def _json_default(value: Any) -> Any:
    # orjson handles str, numbers, bool, None, lists, dicts and datetimes itself. Decimals keep
    # their exact digits as a JSON number; bytes become base64 text; anything else its str().
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value)) if value.is_finite() else str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, date | time | datetime):
        return value.isoformat()
    return str(value)


def rows_to_events(rows: list[dict[str, Any]], first_row: int) -> list[RawEvent]:
    """Typed rows (Parquet, Avro) as JSON objects; naive timestamps are taken as UTC."""
    return [
        RawEvent(
            dumps_kept(r, default=_json_default, option=orjson.OPT_NAIVE_UTC),
            key_of(r.get("transaction_id")),
            first_row + i,
        )
        for i, r in enumerate(rows)
    ]
