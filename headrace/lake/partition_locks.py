"""Writers' fence on a PostgreSQL catalog: advisory locks held from before BEGIN to after COMMIT.

On a PostgreSQL catalog DuckLake lets two transactions that only append commit side by side (a
conflict is only a write to what the other changed), so two loaders that both read the offsets
ledger before either committed would both load the same offsets: a paused (SIGSTOPped) loader
whose partition moved to another instance, resuming with its batch in hand, loads it twice. So
a writer first takes one PostgreSQL advisory lock per partition its transaction touches, on a
connection of its own (a session lock: it survives the DuckDB transaction's commit), and only
then begins the DuckDB transaction, whose snapshot therefore includes the previous holder's
commit; its ledger check drops what that holder loaded. Keys are taken in sorted order, so two
writers that want overlapping sets never deadlock. The summarizer's refresh takes one lock.

What the others see of a holder is the same as with the SQLite catalog's flock
(headrace/lake/catalog_lock.py): a killed holder's connection closes and PostgreSQL frees its
locks at once; a paused holder keeps the others waiting on its partitions until it resumes, then
commits or fails, and the next holder's ledger check decides which offsets are new. The choice
of advisory locks over a conflicting write per partition, or DuckLake's conflict detection
alone, was measured (`python -m bench.catalog_fence`, docs/architecture.md).
"""

from __future__ import annotations

import contextlib
import logging
import zlib
from collections.abc import Iterable, Iterator

import psycopg

log = logging.getLogger(__name__)

# One PostgreSQL advisory lock key: pg_advisory_lock(int4, int4).
LockKey = tuple[int, int]


class LocksLost(psycopg.OperationalError):
    """The connection holding the locks broke inside the transaction: it must not commit.

    Checked just before COMMIT (`Session.transact`); a connection lost in the instant between
    that check and the COMMIT is not seen, a window of one round trip to the catalog.
    """


def _int4(text: str) -> int:
    """A stable signed 32-bit hash of `text` (Python's hash() differs between processes)."""
    value = zlib.crc32(text.encode())
    return value - 2**32 if value >= 2**31 else value


def partition_key(group: str, topic: str, partition: int) -> LockKey:
    """The lock of one partition of `topic` for the loader group `group`."""
    return _int4(f"{group}\0{topic}"), partition


def single_key(name: str) -> LockKey:
    """A lock for one writer at a time of what `name` stands for (the summarizer's refresh)."""
    return _int4(f"single\0{name}"), 0


class PartitionLocks:
    """Session advisory locks on a connection of their own to the catalog's database.

    The connection is opened on first use and again after it broke (a restarted server), so a
    lost connection is one failed attempt, retried like any other catalog error.
    """

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.con: psycopg.Connection[tuple[object, ...]] | None = None

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self.con is None or self.con.closed or self.con.broken:
            self.con = psycopg.connect(self.conninfo, autocommit=True)
        return self.con

    @contextlib.contextmanager
    def held(self, keys: Iterable[LockKey]) -> Iterator[None]:
        """Hold every lock of `keys` inside the `with` block (waiting for each in turn)."""
        wanted = sorted(set(keys))
        if not wanted:
            yield
            return
        con = self._connection()
        taken: list[LockKey] = []
        try:
            for key in wanted:
                con.execute("SELECT pg_advisory_lock(%s, %s)", key)
                taken.append(key)
            yield
        finally:
            self._release(con, taken)

    def still_held(self) -> bool:
        """Whether the lock connection is alive, so the locks taken on it are still held."""
        if self.con is None or self.con.closed or self.con.broken:
            return False
        try:
            self.con.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _release(self, con: psycopg.Connection[tuple[object, ...]], taken: list[LockKey]) -> None:
        try:
            for key in taken:
                con.execute("SELECT pg_advisory_unlock(%s, %s)", key)
        except psycopg.Error as exc:
            # The connection is gone, and the server freed its locks with it.
            log.warning("releasing catalog locks failed (%s); reconnecting", exc)
            with contextlib.suppress(psycopg.Error):
                con.close()

    def close(self) -> None:
        if self.con is not None:
            with contextlib.suppress(psycopg.Error):
                self.con.close()
            self.con = None
