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
        "problems": [
            {"reason": p.reason, "field": p.field, "message": p.message} for p in problems
        ],
        "stage": stage,
        "validator_version": __version__,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "source_timestamp_ms": source_timestamp_ms,
        "rejected_at": datetime.now(UTC),
        "original": original,
    }
