"""Whether the warehouse catalog answers: headrace_catalog_up, from a service's own catalog calls.

The services that write the warehouse (loader, summarizer) pass their name to warehouse.Session,
which reports every connect and transaction here: a success sets the gauge to 1, a failure to
reach the catalog sets it to 0. A lock or commit conflict is an answer (the catalog is there and
busy), and so is an error about the data a transaction carries; neither changes the gauge. So
Prometheus sees a stopped or unreachable catalog (HeadraceCatalogUnreachable) while the service
itself keeps answering scrapes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import duckdb

from headrace.runtime import metrics
from headrace.runtime.errors import OperatorError

T = TypeVar("T")

# What DuckDB (its postgres and sqlite extensions, libpq underneath) says when the catalog itself
# cannot be reached; measured against a stopped PostgreSQL: "IO Error: Failed to query most
# recent snapshot for DuckLake: Unable to connect to Postgres at ...: ... Connection refused".
UNREACHABLE_MARKERS = (
    "Unable to connect to Postgres",
    "server closed the connection",
    "terminating connection",
    "no connection to the server",
    "connection to server",
    "unable to open database file",
    "disk I/O error",
)


def unreachable(exc: BaseException) -> bool:
    """Whether `exc` says the catalog could not be reached (not a conflict, not bad data)."""
    if isinstance(exc, OperatorError):  # connect() names an unattachable catalog this way
        return True
    return isinstance(exc, duckdb.Error) and any(m in str(exc) for m in UNREACHABLE_MARKERS)


class CatalogHealth:
    """headrace_catalog_up{service} for one service."""

    def __init__(self, service: str) -> None:
        self.gauge = metrics.CATALOG_UP.labels(service)

    def call(self, work: Callable[[], T]) -> T:
        """`work` (a connect or a whole transaction), with its outcome on the gauge."""
        try:
            result = work()
        except Exception as exc:
            if unreachable(exc):
                self.gauge.set(0)
            raise
        self.gauge.set(1)
        return result
