"""Poison isolation: a batch that fails because of what it carries is split until the records
that fail alone are found; they go to the error zone (reason UNPROCESSABLE), the rest goes on.

Validation is meant to refuse every record a later step cannot take, so isolation is a safety
net: a record that still gets through must not stop its batch, and a service that exits on it
would fail on the same batch at every restart (a crash loop that stops every event behind it).

What counts as "what it carries" is decided here, once, by the exception's type. Failures of
what a batch runs on (the broker, the bucket, the catalog, the process's memory) are not the
data's fault: they are raised as before, so the service retries, or exits and resumes from its
durable offsets. Anything else a batch raises is taken to be the data's. A bug that fails every
record would then send everything to the error zone; where a step has no side effects, the
caller passes a record that went through before (`canary`), and a canary that fails too means
the step itself is broken: the failure is raised instead of isolating anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import duckdb

from headrace.contract.envelope import Problem

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

REASON = "UNPROCESSABLE"
# Below this size a failing piece is tried record by record rather than halved again.
_ONE_BY_ONE = 4
# Errors of the clients that reach the broker and the bucket, known by the module that defines
# them (so that the pure cores, which isolate, import no Kafka client): confluent-kafka's
# KafkaException lives in `cimpl`, gcsfs's HttpError, aiohttp's client errors.
_CLIENT_MODULES = ("cimpl", "confluent_kafka", "aiokafka", "gcsfs", "aiohttp", "google.", "psycopg")
# DuckDB errors that a value causes: a cast, a range, a constraint, an invalid string.
_DUCKDB_DATA_ERRORS = (
    duckdb.DataError,
    duckdb.IntegrityError,
    duckdb.InvalidInputException,
)


class InfrastructureFailure(Exception):
    """Base of the project's own errors that are never the data's (a stopped consumer loop)."""


def _infrastructure(exc: BaseException) -> bool:
    """A failure of the broker, the bucket or the catalog (or a signal): never the data's."""
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit
        return True
    if isinstance(exc, InfrastructureFailure | OSError):  # OSError: files, sockets, timeouts
        return True
    if isinstance(exc, duckdb.Error):
        return not isinstance(exc, _DUCKDB_DATA_ERRORS) and not _out_of_memory(exc)
    return any(c.__module__.startswith(_CLIENT_MODULES) for c in type(exc).__mro__)


def _out_of_memory(exc: BaseException) -> bool:
    """A batch too large for the memory it was given: smaller pieces may pass, one record not."""
    return isinstance(exc, MemoryError | duckdb.OutOfMemoryException)


def is_data_failure(exc: BaseException) -> bool:
    """Whether `exc` may be caused by a record of the batch (then isolation applies)."""
    return not _infrastructure(exc)


@dataclass(frozen=True)
class Isolated(Generic[T]):
    """A record that failed alone, and why, as an error-zone problem."""

    item: T
    problem: Problem


def problem_of(stage: str, exc: BaseException) -> Problem:
    """The UNPROCESSABLE problem of a record that `stage` failed on with `exc`."""
    # One line of valid UTF-8 (a message may quote the bad bytes), short enough for an envelope.
    text = " ".join(str(exc).split())[:500].encode("utf-8", "replace").decode() or "(no message)"
    return Problem(REASON, None, f"{stage}: {type(exc).__name__}: {text}")


def isolate(
    items: Sequence[T],
    attempt: Callable[[Sequence[T]], R],
    stage: str,
    canary: Sequence[T] = (),
    settle: Callable[[Isolated[T]], R] | None = None,
) -> tuple[list[R], list[Isolated[T]]]:
    """Run `attempt` on `items`; on a data failure, on halves of them, down to single records.

    Returns the results of the pieces that passed, in the order of `items` (so a step with side
    effects, such as a commit, runs its pieces in order), and the records that failed alone. A
    failure that is not the data's is raised at once. `canary` (records `attempt` took before)
    tells a broken step from bad records: when it fails too, the first failure is raised.
    With `settle`, each record that fails alone is handed to it at once, before the pieces
    after it run, and its result joins the others in order (a step that commits pieces in
    order commits the isolated record in its place). Callers count the isolated records
    (`metrics.ISOLATED_RECORDS`) once their batch is durable.
    """
    results: list[R] = []
    isolated: list[Isolated[T]] = []
    checked = not canary

    def run(piece: Sequence[T]) -> None:
        nonlocal checked
        try:
            results.append(attempt(piece))
            return
        except Exception as exc:
            if not is_data_failure(exc):
                raise
            if len(piece) == 1:
                if _out_of_memory(exc):
                    raise
                if not checked:
                    checked = True
                    _check_canary(attempt, canary, exc)
                log.warning("%s: a record fails alone; it goes to the error zone: %r", stage, exc)
                found = Isolated(piece[0], problem_of(stage, exc))
                isolated.append(found)
                if settle is not None:
                    results.append(settle(found))
                return
            first = str(exc).splitlines()[0] if str(exc) else ""
            log.warning(
                "%s: a batch of %d failed (%s: %s); splitting it to isolate the records at fault",
                stage,
                len(piece),
                type(exc).__name__,
                first[:200],
            )
        if len(piece) <= _ONE_BY_ONE:
            for item in piece:
                run([item])
            return
        middle = len(piece) // 2
        run(piece[:middle])
        run(piece[middle:])

    run(items)
    return results, isolated


def _check_canary(attempt: Callable[[Sequence[T]], R], canary: Sequence[T], exc: Exception) -> None:
    try:
        attempt(canary)
    except Exception as canary_exc:
        log.error(
            "records that passed before fail now too (%r): the step is broken, not the data",
            canary_exc,
        )
        raise exc from None
