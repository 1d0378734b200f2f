"""Named places where a process can be made to kill itself, to hit each dangerous moment on purpose,
and records that a service can be made to fail on, to prove poison isolation in a running service.

Set HEADRACE_CRASH_AT to a point's name (or `name@N` for the N-th time it is reached) and the
process SIGKILLs itself there: no cleanup, no flush, exactly like a power cut. Unset, a crash
point costs one dictionary lookup. HEADRACE_PAUSE_AT takes the same values and makes the process
SIGSTOP itself there instead, as a long GC pause or a frozen VM would find it: whoever sends it
SIGCONT decides when it goes on (the PostgreSQL fence tests pause a loader inside its
transaction this way).

Set HEADRACE_POISON_AT to `<service>:<marker>` and that service's processing step raises on
every record whose bytes hold the marker, as it would on a record it cannot take although the
checks before it passed (headrace/contract/poison.py then isolates it). Unset, it costs one
comparison per batch.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

ENV = "HEADRACE_CRASH_AT"

# Every point, with the moment it stands for. The fault suite hits each one.
POINTS: dict[str, str] = {
    "producer.after_batch": "a replay batch handed to librdkafka, some not yet acknowledged",
    "stager.after_first_file": "one zone file written, the batch's other files not yet",
    "stager.before_commit": "every file of the batch written, offsets not committed",
    "validator.mid_transaction": "records produced inside the transaction, offsets not yet sent",
    "validator.before_commit": "offsets sent to the transaction, commit not yet called",
    "validator.after_commit": "transaction committed, next batch not started",
    "loader.before_commit": "warehouse transaction complete but not committed",
    "loader.after_commit": "warehouse committed, manifest not yet published",
    "loader.after_manifest": "manifest published, Kafka offsets not yet committed",
}


PAUSE_ENV = "HEADRACE_PAUSE_AT"


def _target(env: str) -> tuple[str, int] | None:
    value = os.environ.get(env, "")
    if not value:
        return None
    name, _, nth = value.partition("@")
    if name not in POINTS:
        raise ValueError(f"{env}={value}: unknown crash point; known: {', '.join(POINTS)}")
    return name, int(nth or 1)


_TARGETS = {
    sig: target
    for sig, env in ((signal.SIGKILL, ENV), (signal.SIGSTOP, PAUSE_ENV))
    if (target := _target(env)) is not None
}
_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Die here by SIGKILL if HEADRACE_CRASH_AT names this point (and this is the N-th visit);
    stop here by SIGSTOP if HEADRACE_PAUSE_AT does."""
    if not _TARGETS or all(t[0] != name for t in _TARGETS.values()):
        return
    _reached[name] = _reached.get(name, 0) + 1
    for sig, (point, nth) in _TARGETS.items():
        if point == name and _reached[name] == nth:
            os.kill(os.getpid(), sig)


POISON_ENV = "HEADRACE_POISON_AT"


class InjectedPoison(ValueError):
    """Raised on a record holding the HEADRACE_POISON_AT marker (a data failure, as any other)."""


def _poison_target() -> tuple[str, bytes] | None:
    service, _, marker = os.environ.get(POISON_ENV, "").partition(":")
    return (service, marker.encode()) if marker else None


_POISON = _poison_target()


def poison_point(service: str, values: Iterable[bytes | None]) -> None:
    """Raise InjectedPoison if HEADRACE_POISON_AT names `service` and a value holds its marker."""
    if _POISON is None or _POISON[0] != service:
        return
    marker = _POISON[1]
    if any(marker in v for v in values if v):
        raise InjectedPoison(f"{POISON_ENV}: a record holds the marker {marker.decode()!r}")


def poison_rows(service: str, strings: pa.ChunkedArray) -> None:
    """`poison_point` for a step that holds a column of strings rather than the records' bytes."""
    if _POISON is None or _POISON[0] != service:
        return
    marker = _POISON[1].decode()
    if pc.any(pc.match_substring(strings, marker)).as_py():
        raise InjectedPoison(f"{POISON_ENV}: a record holds the marker {marker!r}")
