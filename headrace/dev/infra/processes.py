"""Background processes tracked by PID files: start once, stop by PID, report status."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


def read_pid(pid_file: Path) -> int | None:
    """The PID in `pid_file` if that process is alive, else None (a stale file is removed)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return None
    if _is_zombie(pid):
        pid_file.unlink(missing_ok=True)
        return None
    return pid


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return False


def start(
    cmd: Sequence[str],
    pid_file: Path,
    log_file: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start `cmd` detached (own session, output to `log_file`) unless its PID file is live."""
    running = read_pid(pid_file)
    if running is not None:
        return running
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            list(cmd),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(proc.pid))
    return proc.pid


def stop(pid_file: Path, grace_seconds: float = 20.0) -> bool:
    """SIGTERM the process group, SIGKILL it after the grace period; True if one was running."""
    return bool(stop_all([pid_file], grace_seconds))


def stop_all(pid_files: Sequence[Path], grace_seconds: float = 20.0) -> list[Path]:
    """Stop every live process of `pid_files` at once; return the PID files that were live.

    All are sent SIGTERM before any is waited for, so their shutdowns overlap: the nodes of a
    Kafka cluster stopped one by one each wait for the others (the last ones for a quorum that
    is gone), a cluster stopped at once shuts down together. SIGKILL after the grace period.
    """
    live = {f: pid for f in pid_files if (pid := read_pid(f)) is not None}
    for pid in live.values():
        _signal_group(pid, signal.SIGTERM)
    _wait_gone(live, time.monotonic() + grace_seconds)
    for pid_file, pid in live.items():
        if read_pid(pid_file) is not None:
            _signal_group(pid, signal.SIGKILL)
    _wait_gone(live, time.monotonic() + 5.0)
    for pid_file in live:
        pid_file.unlink(missing_ok=True)
    return list(live)


def _wait_gone(live: dict[Path, int], deadline: float) -> None:
    while time.monotonic() < deadline:
        for pid in live.values():
            _reap(pid)
        if all(read_pid(f) is None for f in live):
            return
        time.sleep(0.1)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child, so it does not linger."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
