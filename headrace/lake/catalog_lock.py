"""Turns for the writers of a SQLite catalog, so their transactions queue instead of racing.

On a SQLite catalog (WAL mode) a DuckLake transaction that has read the catalog cannot commit
once any other writer has committed, whatever tables either touched: its read snapshot is stale
and the commit fails with "database is locked". The transaction is then redone from the start,
Parquet uploads included. So a long transaction loses to short ones again and again: the
summarizer's refresh over a 10M-row warehouse lost to the loader's commits until its watchdog
restarted it, and on a slow bucket the loader's batches lost to the summarizer's refreshes.

Every writer of the catalog is on one machine (SQLite cannot be shared over a network), so an
exclusive `flock` on a file beside the catalog, held from BEGIN to COMMIT, gives writers turns.
The kernel drops it when the holder dies, so a kill -9 never leaves the catalog locked. A paused
holder (SIGSTOP) keeps the others waiting until it resumes; its transaction then commits or
fails as before, and the loader's ledger check, made inside the turn, still decides which
offsets are new. Readers never take it. Writers of a PostgreSQL catalog lock only what they
write instead (headrace/lake/partition_locks.py).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType


class CatalogLock:
    """An exclusive flock on `<catalog>.writer-lock`, held inside a `with` block."""

    def __init__(self, catalog: Path) -> None:
        path = catalog.with_name(catalog.name + ".writer-lock")
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def __enter__(self) -> CatalogLock:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
