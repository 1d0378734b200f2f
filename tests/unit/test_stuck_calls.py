"""A client call that outlasts its deadline ends the process; one that returns is transparent."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from headrace.kafka import stuck_calls


def test_a_call_within_its_deadline_returns_its_value_or_raises_its_error() -> None:
    assert stuck_calls.within(5, "quick", lambda: 42) == 42

    def fails() -> None:
        raise ValueError("from the call")

    with pytest.raises(ValueError, match="from the call"):
        stuck_calls.within(5, "failing", fails)


def test_a_call_past_its_deadline_ends_the_process_with_one_line() -> None:
    program = (
        "import logging, time\n"
        "from headrace.kafka import stuck_calls\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "stuck_calls.within(0.5, 'send_offsets_to_transaction', lambda: time.sleep(60))\n"
        "print('not reached')\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == stuck_calls.EXIT_CODE
    assert time.monotonic() - started < 20  # not the 60 s the call would take
    assert "not reached" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "send_offsets_to_transaction still blocked after 0s" in lines[0]
