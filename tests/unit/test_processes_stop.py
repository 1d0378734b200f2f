"""Stopping several processes at once: their shutdowns overlap instead of adding up."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from headrace.dev.infra import processes

# Takes a second to shut down after SIGTERM, as a broker does its controlled shutdown.
SLOW_TO_STOP = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1.0), sys.exit(0)))\n"
    "print('up', flush=True)\n"
    "time.sleep(60)\n"
)


def test_stop_all_signals_every_process_before_waiting(tmp_path: Path) -> None:
    pid_files = [tmp_path / f"p{i}.pid" for i in range(3)]
    for i, pid_file in enumerate(pid_files):
        processes.start([sys.executable, "-c", SLOW_TO_STOP], pid_file, tmp_path / f"p{i}.log")
    deadline = time.monotonic() + 20
    while not all("up" in (tmp_path / f"p{i}.log").read_text() for i in range(3)):
        assert time.monotonic() < deadline, "the processes did not start"
        time.sleep(0.05)
    started = time.monotonic()
    stopped = processes.stop_all(pid_files, grace_seconds=10)
    took = time.monotonic() - started
    assert stopped == pid_files
    assert all(processes.read_pid(f) is None for f in pid_files)
    assert 1.0 <= took < 2.5, f"three 1 s shutdowns took {took:.1f}s"
    assert processes.stop_all(pid_files) == []
