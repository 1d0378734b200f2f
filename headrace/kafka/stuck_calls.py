"""Client calls that may block past their own timeout: given a deadline, else the process exits.

librdkafka's `send_offsets_to_transaction` does not honour its timeout while the group
coordinator is away: the coordinator request's deadline is never checked (upstream
confluentinc/librdkafka#5456), and a coordinator whose broker left the metadata can stay cached
with nothing to wake the request (#5511). After a broker restart the fault suite saw the
validator blocked in it for minutes, until the batch bound and the watchdog ended the process
75 s later. The producer cannot be used again while one of its calls is stuck inside librdkafka,
and the batch's transaction is not committed, so exiting at once is safe: the supervisor restarts
the service, whose new producer fences the stuck transaction and redoes the batch.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
EXIT_CODE = 70  # as the watchdog's: a service that cannot make progress


def within(seconds: float, what: str, call: Callable[[], T]) -> T:
    """`call()`'s result or exception, if it ends within `seconds`; otherwise the process exits."""
    outcome: list[tuple[T | None, BaseException | None]] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append((call(), None))
        except BaseException as exc:  # handed to the caller's thread as is
            outcome.append((None, exc))
        finally:
            done.set()

    # A daemon thread: one stuck in librdkafka must not hold the exit below.
    threading.Thread(target=run, daemon=True, name=what).start()
    if not done.wait(seconds):
        log.critical(
            "%s still blocked after %.0fs (librdkafka can outlast its own timeout while the group "
            "coordinator moves); exiting so the supervisor restarts us",
            what,
            seconds,
        )
        os._exit(EXIT_CODE)
    result, error = outcome[0]
    if error is not None:
        raise error
    return result  # type: ignore[return-value]  # None only when `call` returned None
