"""Seeded sample transactions with a known share of bad events of several kinds.

`generate` returns how many events of each reason code it wrote, so tests can assert exact counts.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

STATUSES = ("PENDING", "COMPLETED", "FAILED", "REVERSED", "CANCELLED")
ACCOUNT_TYPES = ("CHECKING", "SAVINGS", "CREDIT", "BUSINESS")
REGIONS = ("NA", "EU", "APAC", "LATAM", "MEA")
SOURCES = ("pos", "web", "mobile", "atm", "batch-core")


def good_event(
    rng: random.Random,
    transaction_id: int,
    now: datetime,
    accounts: list[int],
    days: int = 30,
) -> dict[str, Any]:
    account = rng.choice(accounts)
    when = now - timedelta(seconds=rng.randrange(1, days * 86400 + 1))
    return {
        "transaction_id": transaction_id,
        "amount": round(rng.uniform(1, 5000), 2),
        "processing_duration": None if rng.random() < 0.05 else round(rng.uniform(0.01, 3.0), 3),
        "status": rng.choice(STATUSES),
        "source_system": rng.choice(SOURCES),
        "account_number": f"{account:012d}",
        "account_type": rng.choice(ACCOUNT_TYPES),
        "customer_region": rng.choice(REGIONS),
        "event_time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def _dumps(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


# Each bad kind: (reason code the validator must give, how to spoil a good event).
BAD_KINDS: dict[str, tuple[str, Callable[[dict[str, Any]], bytes]]] = {
    "truncated_json": ("PARSE", lambda e: _dumps(e)[:-7]),
    "not_utf8": (
        "ENCODING",
        lambda e: _dumps(e).replace(b'"source_system":"', b'"source_system":"\xff', 1),
    ),
    "missing_amount": ("MISSING", lambda e: _dumps({k: v for k, v in e.items() if k != "amount"})),
    "negative_amount": ("RANGE", lambda e: _dumps({**e, "amount": -abs(e["amount"])})),
    "amount_as_text": ("TYPE", lambda e: _dumps({**e, "amount": str(e["amount"])})),
    "unknown_status": ("ENUM", lambda e: _dumps({**e, "status": "DONE"})),
    "short_account": (
        "PATTERN",
        lambda e: _dumps({**e, "account_number": e["account_number"][:8]}),
    ),
    "future_time": ("TIME", lambda e: _dumps({**e, "event_time": "2999-01-01T00:00:00Z"})),
}


def generate(
    path: Path,
    events: int,
    bad_ratio: float = 0.02,
    seed: int = 7,
    first_id: int = 1,
    *,
    now: datetime | None = None,
    days: int = 30,
) -> Counter[str]:
    """Write `events` JSON lines to `path`; return the count per reason code ("VALID" for good).

    Event times fall in the `days` days before `now` (default: the current second). Pass the
    same `now` to several calls to make their days comparable whatever the wall clock says.
    """
    rng = random.Random(seed)
    now = now or datetime.now(UTC).replace(microsecond=0)
    kinds = list(BAD_KINDS.values())
    accounts = [rng.randrange(10**11, 10**12) for _ in range(max(10, events // 40))]
    expected: Counter[str] = Counter()
    with path.open("wb") as out:
        for i in range(events):
            event = good_event(rng, first_id + i, now, accounts, days)
            if rng.random() < bad_ratio:
                reason, spoil = rng.choice(kinds)
                line = spoil(event)
            else:
                reason, line = "VALID", _dumps(event)
            expected[reason] += 1
            out.write(line + b"\n")
    return expected
