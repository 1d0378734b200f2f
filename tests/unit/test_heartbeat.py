"""A long step keeps the service alive until its own bound, then reads as stuck."""

from __future__ import annotations

import time

from headrace.runtime.http import Heartbeat


def test_a_busy_step_beats_until_its_bound_then_the_loop_reads_as_stuck() -> None:
    heartbeat = Heartbeat(max_silence=1.5)
    with heartbeat.busy(max_seconds=10):
        time.sleep(2.5)  # longer than the silence allowed
        assert heartbeat.alive()[0]
    assert heartbeat.alive()[0]  # the step's end beats too
    with heartbeat.busy(max_seconds=0.5):
        time.sleep(2.5)  # the bound passed a second or more ago: no beat since
        alive, detail = heartbeat.alive()
        assert not alive, detail


def test_a_quiet_loop_reads_as_stuck_without_a_busy_step() -> None:
    heartbeat = Heartbeat(max_silence=0.2)
    time.sleep(0.4)
    assert not heartbeat.alive()[0]
