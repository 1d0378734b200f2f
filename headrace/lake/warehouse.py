"""Warehouse access: DuckDB with the DuckLake catalog attached as `lake`.

Extensions come from their PyPI packages (duckdb-extension-*), never from a download at run time.
Table data lives in the bucket's clean zone; the catalog is a SQLite file (one machine) or
PostgreSQL (many). See docs/architecture.md, "Warehouse: DuckDB over DuckLake".
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import random
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import duckdb
import psycopg

from headrace.lake.bucket import Bucket
from headrace.lake.catalog_health import CatalogHealth
from headrace.lake.catalog_lock import CatalogLock
from headrace.lake.partition_locks import LockKey, LocksLost, PartitionLocks, single_key
from headrace.runtime.errors import (
    URL_SCHEME,
    OperatorError,
    folder_problem,
    one_line,
    without_passwords,
)
from headrace.runtime.paths import WAREHOUSE_DDL_DIR
from headrace.runtime.settings import CommonSettings, is_postgres, resolve_local

log = logging.getLogger(__name__)
T = TypeVar("T")
LAKE = "lake"
_CREATING = threading.Lock()
TRANSIENT_MARKERS = ("database is locked", "Transaction conflict", "Conflict on", "busy")
CATALOG_FORMS = (
    "a SQLite file path (/data/warehouse/catalog.sqlite) or postgres:<libpq connection string> "
    "(postgres:host=db dbname=lake user=headrace)"
)
# DuckDB's wrapping of a failed PostgreSQL connection; what follows is libpq's own reason.
_POSTGRES_UNREACHABLE = re.compile(r'Unable to connect to Postgres at "[^"]*": (.*)')


def _extension_path(name: str) -> Path:
    try:
        module = importlib.import_module(f"duckdb_extension_{name}")
    except ImportError:
        raise OperatorError(
            f"duckdb-extension-{name} is not installed; run `pip install -e .` (it is a "
            "dependency of headrace)"
        ) from None
    found = sorted(Path(str(module.__file__)).parent.rglob(f"{name}.duckdb_extension"))
    if not found:
        raise OperatorError(
            f"duckdb-extension-{name} is installed without its binary; reinstall it"
        )
    return found[0]


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    try:
        con.execute(f"INSTALL '{_extension_path(name)}'")
    except duckdb.IOException as exc:
        if "home directory" not in str(exc):
            raise
        # DuckDB copies an installed extension under $HOME/.duckdb.
        raise OperatorError(
            "DuckDB needs a home folder to install its extensions in: set HOME to a writable folder"
        ) from None
    con.execute(f"LOAD {name}")


def catalog_dsn(catalog_url: str, create: bool = True) -> tuple[str, str]:
    """DuckLake attach string and the extension its catalog needs.

    A SQLite catalog that does not exist yet is created (its folder too) when `create`; a reader
    (`create` false) is told where it looked instead. Every problem is an OperatorError naming
    HEADRACE_CATALOG_URL.
    """
    if is_postgres(catalog_url):
        if not catalog_url.removeprefix("postgres:").strip():
            raise OperatorError(
                "HEADRACE_CATALOG_URL=postgres: has no connection string; use " + CATALOG_FORMS
            )
        return f"ducklake:{catalog_url}", "postgres"
    if not catalog_url.strip() or URL_SCHEME.match(catalog_url):
        raise OperatorError(
            f"HEADRACE_CATALOG_URL={without_passwords(catalog_url)!r} is not supported: use "
            + CATALOG_FORMS
        )
    path = Path(resolve_local(catalog_url))
    if _is_dir(path):
        raise OperatorError(
            f"the warehouse catalog {path} (HEADRACE_CATALOG_URL) is a folder; set "
            f"HEADRACE_CATALOG_URL to a file, such as {path / 'catalog.sqlite'}"
        )
    if not create:
        if not path.exists():
            raise OperatorError(
                f"no warehouse catalog at {path} (HEADRACE_CATALOG_URL); fix the setting, or "
                "start a loader, which creates the catalog"
            )
        return f"ducklake:sqlite:{path}", "sqlite"
    advice = "set HEADRACE_CATALOG_URL to a file in a folder this user can write"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OperatorError(
            f"the folder of the warehouse catalog {path} (HEADRACE_CATALOG_URL) cannot be "
            f"created: {folder_problem(path.parent, exc)}; {advice}"
        ) from None
    try:
        use_wal(path)
    except (OSError, sqlite3.Error) as exc:
        raise OperatorError(
            f"the warehouse catalog {path} (HEADRACE_CATALOG_URL) cannot be created: "
            f"{one_line(exc)}; {advice}"
        ) from None
    return f"ducklake:sqlite:{path}", "sqlite"


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def catalog_problem(catalog_url: str, exc: BaseException) -> str:
    """One line for a catalog that does not attach: what failed and what to fix."""
    shown = without_passwords(catalog_url)
    reason = without_passwords(one_line(exc))
    if is_postgres(catalog_url) and (unreachable := _POSTGRES_UNREACHABLE.search(reason)):
        return (
            f"cannot connect to the PostgreSQL warehouse catalog (HEADRACE_CATALOG_URL={shown}): "
            f"{unreachable.group(1)}; check that PostgreSQL is running and the host, port, "
            "dbname and user in HEADRACE_CATALOG_URL (the password comes from PGPASSWORD)"
        )
    return (
        f"cannot open the warehouse catalog {shown} ({reason}); check HEADRACE_CATALOG_URL "
        "(a loader creates it)"
    )


def writer_turns(catalog_url: str) -> CatalogLock | None:
    """The turn-taking lock of a SQLite catalog's writers; None for PostgreSQL."""
    if is_postgres(catalog_url):
        return None
    return CatalogLock(Path(resolve_local(catalog_url)))


def writer_locks(catalog_url: str) -> PartitionLocks | None:
    """The advisory locks fencing a PostgreSQL catalog's writers; None for SQLite."""
    if not is_postgres(catalog_url):
        return None
    return PartitionLocks(catalog_url.removeprefix("postgres:"))


def use_wal(path: Path) -> None:
    """Create a SQLite catalog in WAL mode (the mode is stored in the file, so once is enough).

    In the default rollback-journal mode any open read transaction (a dashboard, a metrics
    scrape, a paused process) blocks every commit; the fault suite saw a loader locked out for
    minutes. In WAL mode readers never block the writer, and a transaction that read a snapshot
    someone else has since committed over still fails its commit with "database is locked", so
    the loader's ledger check inside its transaction stays a real fence (it retries and re-reads).

    Only a file that does not exist yet is touched, under a process-wide lock: Python's sqlite3
    and DuckDB's bundled SQLite are two copies of the library, and one copy closing the file drops
    the POSIX locks the other holds in the same process, which let two writers in at once and
    corrupted a catalog in the fault suite ("database disk image is malformed").
    """
    with _CREATING:
        if path.exists():
            return
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
            db.execute("PRAGMA journal_mode=WAL")


def connect(
    settings: CommonSettings, read_only: bool = False, service: bool = False
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the warehouse attached as `lake` and selected with USE.

    A `service`'s connection differs from an analyst's in two ways. DuckDB's external file cache
    (data file blocks kept in its memory for the next query) is off: a service reads a batch's
    files once, and the cache only held memory (the summarizer's first read of a 10M-row table:
    85 MiB). It runs `duckdb_threads` threads (1): on a batch of 100k rows a second thread cost
    the loader a third more CPU per event for the same wall time (docs/performance.md).
    """
    bucket = Bucket.open(settings.bucket_url, settings.gcs_endpoint)
    # DuckDB takes 80% of the machine's RAM by default; half the process budget leaves room for
    # the Kafka client queues and the batch being built.
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": f"{settings.memory_budget_mb // 2}MB"
    }
    if service:
        config |= {"enable_external_file_cache": False, "threads": settings.duckdb_threads}
    dsn, catalog_ext = catalog_dsn(settings.catalog_url, create=not read_only)
    con = duckdb.connect(config=config)
    for ext in ("ducklake", catalog_ext):
        load_extension(con, ext)
    if not bucket.is_local:
        # DuckLake autoloads httpfs for a gs:// data path; the I/O itself goes through gcsfs.
        load_extension(con, "httpfs")
        con.register_filesystem(bucket.fs)
    # No data inlining by default: fact rows always live in clean-zone Parquet. The small
    # bookkeeping tables override this per table (schemas/warehouse/005_inline_small_tables.sql).
    options = f"DATA_PATH '{bucket.url('clean/')}', DATA_INLINING_ROW_LIMIT 0"
    if read_only:
        options += ", READ_ONLY"
    try:
        # Attaching reads the catalog, so it can meet a writer's lock like any transaction.
        attach(con, f"ATTACH '{dsn}' AS {LAKE} ({options})")
    except duckdb.Error as exc:
        con.close()
        raise OperatorError(catalog_problem(settings.catalog_url, exc)) from None
    con.execute(f"USE {LAKE}")
    return con


def attach(con: duckdb.DuckDBPyConnection, statement: str, attempts: int = 5) -> None:
    """ATTACH, retried on a lock or conflict, and on another process creating the catalog.

    Processes attaching a new PostgreSQL catalog at once all create DuckLake's metadata tables;
    all but one fail ("relation ... already exists", or PostgreSQL's unique violation), and
    attaching again finds the catalog made (seen with three processes starting at once).
    """
    for attempt in range(attempts):
        try:
            with_retries(lambda: con.execute(statement))
            return
        except duckdb.Error as exc:
            if not _creating_race(exc) or attempt == attempts - 1:
                raise
            log.info("another process is creating the catalog; attaching again")
            time.sleep(0.2 * (attempt + 1))


def _creating_race(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "Failed to initialize DuckLake" in text and (
        "already exists" in text or "duplicate key value violates unique constraint" in text
    )


def is_transient(exc: BaseException) -> bool:
    # A lost connection to PostgreSQL holding the catalog's locks: the locks went with it.
    if isinstance(exc, psycopg.OperationalError):
        return True
    return isinstance(exc, duckdb.Error) and any(m in str(exc) for m in TRANSIENT_MARKERS)


def with_retries(
    work: Callable[[], T],
    attempts: int = 30,
    base_delay: float = 0.05,
    max_delay: float = 2.0,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """Run `work` (a whole transaction) again on a catalog lock or commit conflict."""
    for attempt in range(attempts):
        try:
            return work()
        except (duckdb.Error, psycopg.OperationalError) as exc:
            if not is_transient(exc) or attempt == attempts - 1:
                raise
            delay = min(max_delay, base_delay * 2**attempt) * (0.5 + random.random())
            log.info("warehouse busy (%s); retrying in %.2fs", str(exc).splitlines()[0], delay)
            time.sleep(delay)
            if on_retry is not None:
                on_retry()
    raise AssertionError("unreachable")


class Session:
    """A warehouse connection whose transactions are retried, each retry on a fresh connection.

    Seen in the fault suite: after a DuckLake commit fails on a locked SQLite catalog, the same
    connection can keep the catalog locked for every later attempt (its own and everyone else's).
    Reconnecting before a retry clears that state. A `service`'s session shows whether its
    connects and transactions reach the catalog on headrace_catalog_up (catalog_health.py).
    """

    def __init__(
        self,
        settings: CommonSettings,
        read_only: bool = False,
        on_retry: Callable[[], None] | None = None,
        service: str | None = None,
    ) -> None:
        self.settings, self.read_only, self.on_retry = settings, read_only, on_retry
        self.health = CatalogHealth(service) if service else None
        self.con = self._connect()
        # Writers of a SQLite catalog take turns (headrace/lake/catalog_lock.py); writers of a
        # PostgreSQL catalog lock what they write (headrace/lake/partition_locks.py).
        self.turns = writer_turns(settings.catalog_url) if not read_only else None
        self.locks = writer_locks(settings.catalog_url) if not read_only else None

    def transact(
        self, work: Callable[[duckdb.DuckDBPyConnection], T], locks: Sequence[LockKey] = ()
    ) -> T:
        """`work` in a transaction that may write, retried: on SQLite in the writers' turn, on
        PostgreSQL holding the advisory locks `locks` (a writer that races no other passes
        none, and a SQLite catalog's turn covers every writer)."""
        if self.locks is not None:
            return self._watched(
                lambda: with_retries(lambda: self._locked(work, locks), on_retry=self.reconnect)
            )
        with self.turns or contextlib.nullcontext():
            return self.read(work)

    def _locked(self, work: Callable[[duckdb.DuckDBPyConnection], T], keys: Sequence[LockKey]) -> T:
        """One attempt: the locks taken, then BEGIN, so the transaction's snapshot holds the
        previous holder's commit; COMMIT only while the locks are still held."""
        assert self.locks is not None
        locks = self.locks

        def checked() -> T:
            result = work(self.con)
            if keys and not locks.still_held():
                raise LocksLost("the connection holding the catalog locks was lost")
            return result

        with locks.held(keys):
            return in_transaction(self.con, checked)

    def read(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`work` in a transaction that only reads: no turn needed (readers never conflict)."""
        return self._watched(
            lambda: with_retries(
                lambda: in_transaction(self.con, lambda: work(self.con)), on_retry=self.reconnect
            )
        )

    def trial(self, work: Callable[[duckdb.DuckDBPyConnection], object]) -> None:
        """`work` in a transaction that is rolled back: whether it would pass, with no effect.

        DuckLake deletes the data files a rolled-back transaction wrote.
        """
        self._watched(
            lambda: with_retries(
                lambda: rolled_back(self.con, lambda: work(self.con)), on_retry=self.reconnect
            )
        )

    def reconnect(self) -> None:
        if self.on_retry is not None:
            self.on_retry()
        with contextlib.suppress(duckdb.Error):
            self.con.close()
        self.con = self._connect()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        return self._watched(lambda: connect(self.settings, self.read_only, service=True))

    def _watched(self, work: Callable[[], T]) -> T:
        return self.health.call(work) if self.health is not None else work()


def in_transaction(con: duckdb.DuckDBPyConnection, work: Callable[[], T]) -> T:
    """BEGIN, work, COMMIT; ROLLBACK on any error so the connection stays usable."""
    con.execute("BEGIN")
    try:
        result = work()
        con.execute("COMMIT")
        return result
    except BaseException:
        # A failed COMMIT has already ended the transaction, and then ROLLBACK has nothing to do.
        with contextlib.suppress(duckdb.TransactionException):
            con.execute("ROLLBACK")
        raise


def rolled_back(con: duckdb.DuckDBPyConnection, work: Callable[[], object]) -> None:
    """BEGIN, work, ROLLBACK, whether `work` raises or not."""
    con.execute("BEGIN")
    try:
        work()
    finally:
        with contextlib.suppress(duckdb.TransactionException):
            con.execute("ROLLBACK")


# One migrating process at a time on a PostgreSQL catalog (headrace/lake/partition_locks.py).
MIGRATION_LOCK = single_key("schema_migration")


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the DDL files in schemas/warehouse/ that this catalog has not seen; return them.

    On PostgreSQL, replicas starting at once take turns on an advisory lock: without it, two that
    both found a file unapplied both applied it (measured: 005 recorded twice when three processes
    migrated a new catalog at once), since DuckLake lets both commit what does not conflict.
    """
    row = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = ?", [LAKE]
    ).fetchone()
    locks = writer_locks(str(row[0])) if row and row[0] else None
    if locks is None:
        return _migrate(con)
    try:
        with locks.held([MIGRATION_LOCK]):
            return _migrate(con)
    finally:
        locks.close()


def _migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    # One transaction per file, with its schema_migration row: a file may act on tables an
    # earlier one created (DuckLake options cannot be set on tables created in the same
    # transaction), and a replica migrating at the same time retries and finds the file applied.
    def apply(ddl: Path) -> bool:
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_migration (name VARCHAR, applied_at TIMESTAMPTZ)"
        )
        if con.execute("SELECT 1 FROM schema_migration WHERE name = ?", [ddl.name]).fetchone():
            return False
        con.execute(ddl.read_text())
        con.execute("INSERT INTO schema_migration VALUES (?, now())", [ddl.name])
        return True

    def migrate_file(ddl: Path) -> bool:
        return with_retries(lambda: in_transaction(con, lambda: apply(ddl)))

    return [ddl.name for ddl in sorted(WAREHOUSE_DDL_DIR.glob("*.sql")) if migrate_file(ddl)]
