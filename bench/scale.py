"""How big each measurement is: a named scale (smoke for CI, full for the report), env overrides.

Every field can be overridden by an environment variable BENCH_<FIELD> (for example
BENCH_E2E_EVENTS=2000000), so a run can be resized without editing code.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Scale:
    name: str
    stage_events: int  # backlog each stage and its floor drain
    faust_events: int  # bounded sample for the faust agent (~4k ev/s: keep it small)
    quix_events: int  # bounded sample for the Quix Streams application
    e2e_events: int  # backlog for end to end and peak RSS
    freshness_rate: int  # offered events/s
    freshness_seconds: float  # how long the load is offered
    query_rows: tuple[int, ...]  # fact rows at which query latency is measured
    backfill_events: int  # events over ten years, replayed at once
    query_days: int = 365  # event days the synthetic fact rows spread over (two calendar years)
    query_accounts: int = 100_000


SCALES = {
    "smoke": Scale(
        name="smoke",
        stage_events=50_000,
        faust_events=2_000,
        quix_events=10_000,
        e2e_events=100_000,
        freshness_rate=10_000,
        freshness_seconds=6.0,
        query_rows=(500_000,),
        backfill_events=50_000,
        query_days=90,
    ),
    "full": Scale(
        name="full",
        stage_events=1_000_000,  # tens of seconds per stage: far past start-up, and 30 min in all
        faust_events=30_000,
        quix_events=200_000,
        e2e_events=10_000_000,
        freshness_rate=10_000,
        freshness_seconds=60.0,
        query_rows=(10_000_000, 100_000_000),
        backfill_events=1_000_000,
    ),
}


def from_env(name: str | None = None) -> Scale:
    """The scale named (or BENCH_SCALE, default full), with BENCH_<FIELD> overrides applied."""
    base = SCALES[name or os.environ.get("BENCH_SCALE", "full")]
    # Each value has its own field's type, parsed from the environment: Any per field.
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(base):
        raw = os.environ.get(f"BENCH_{f.name.upper()}")
        if raw is None or f.name == "name":
            continue
        current = getattr(base, f.name)
        if isinstance(current, tuple):
            changes[f.name] = tuple(int(v) for v in raw.split(","))
        else:
            changes[f.name] = type(current)(raw)
    return dataclasses.replace(base, **changes)
