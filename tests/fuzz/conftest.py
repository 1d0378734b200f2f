"""Fuzz sizes and the report: how many inputs each target took, in how long, and what was found.

`make test` runs a bounded smoke (SMOKE_EXAMPLES per target); `make fuzz` sets HEADRACE_FUZZ=long
and each target runs the examples it declares for the long mode, at least 1,000,000 inputs in
all. The report is printed at the end and kept in .headrace/fuzz/result.json.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

LONG = os.environ.get("HEADRACE_FUZZ") == "long"
SMOKE_EXAMPLES = 20
INPUTS: Counter[str] = Counter()
SECONDS: defaultdict[str, float] = defaultdict(float)
RESULT = Path(".headrace/fuzz/result.json")


def examples(long: int) -> settings:
    """Hypothesis settings of a target: `long` examples in the long mode, a smoke otherwise."""
    return settings(
        max_examples=long if LONG else SMOKE_EXAMPLES,
        deadline=None,
        database=None,  # nothing written to the checkout; a failure prints its reproducer
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )


def count(target: str, n: int, started: float) -> None:
    INPUTS[target] += n
    SECONDS[target] += time.monotonic() - started


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not INPUTS:
        return
    # Only this folder's failures: `make test` runs the fuzz smoke among every other test.
    here = Path(__file__).parent.name
    failed = sum(
        r.nodeid.split("/")[-2:-1] == [here] for r in terminalreporter.stats.get("failed", [])
    )
    mode = "long" if LONG else "smoke"
    write = terminalreporter.write_line
    write(f"fuzz ({mode}): {sum(INPUTS.values()):,} inputs, {failed} failing targets")
    for target, n in sorted(INPUTS.items()):
        write(f"  {target:<28} {n:>10,} inputs  {SECONDS[target]:>8.1f} s")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(
        json.dumps(
            {
                "mode": mode,
                "inputs": dict(INPUTS),
                "seconds": {k: round(v, 1) for k, v in SECONDS.items()},
                "failing_targets": failed,
            },
            indent=2,
        )
    )
