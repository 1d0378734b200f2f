"""The error envelope: why an event was rejected, where it came from, and its original bytes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from headrace import __version__

ENVELOPE_SCHEMA = "error_envelope.v1.avsc"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an event: a stable reason code, the field, a message for people."""

    reason: str
    field: str | None
    message: str


# An envelope lists at most this many problems (an event with thousands of unknown fields would
# otherwise outgrow a Kafka message); the last one says how many more there were.
MAX_PROBLEMS = 100


def as_dicts(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    """Problems as the envelope's records, at most MAX_PROBLEMS of them."""
    kept = list(problems[:MAX_PROBLEMS])
    if len(problems) > MAX_PROBLEMS:
        more = len(problems) - MAX_PROBLEMS + 1
        kept[-1] = Problem(kept[-1].reason, None, f"... and {more:,} more problems not listed")
    return [{"reason": p.reason, "field": p.field, "message": p.message} for p in kept]


def build(
    problems: Sequence[Problem],
    stage: str,
    source: tuple[str, int, int],
    original: bytes | None,
    source_timestamp_ms: int | None = None,
) -> dict[str, Any]:
    topic, partition, offset = source
    return {
        "reason": problems[0].reason,
        "problems": as_dicts(problems),
        "stage": stage,
        "validator_version": __version__,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "source_timestamp_ms": source_timestamp_ms,
        "rejected_at": datetime.now(UTC),
        "original": original,
    }
