from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb

from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings


def test_writers_of_a_sqlite_catalog_take_turns_instead_of_redoing_work(tmp_path: Path) -> None:
    common = CommonSettings(
        bucket_url=str(tmp_path / "bucket"), catalog_url=str(tmp_path / "catalog.sqlite")
    )
    retries = {"a": 0, "b": 0}

    def counting(name: str) -> warehouse.Session:
        return warehouse.Session(
            common, on_retry=lambda: retries.__setitem__(name, 1 + retries[name])
        )

    a, b = counting("a"), counting("b")
    a.con.execute("CREATE TABLE x (i INTEGER)")
    a.con.execute("CREATE TABLE y (i INTEGER)")
    a_inside = threading.Event()

    def long_write(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("SELECT count(*) FROM x").fetchall()  # the snapshot is taken here
        con.execute("INSERT INTO x VALUES (1)")
        a_inside.set()
        time.sleep(1.0)

    slow = threading.Thread(target=a.transact, args=(long_write,))
    slow.start()
    assert a_inside.wait(10)
    started = time.monotonic()
    # Another table, yet without turns this commit would make a's COMMIT fail and redo its work.
    b.transact(lambda con: con.execute("INSERT INTO y VALUES (2)"))
    waited = time.monotonic() - started
    slow.join(10)
    assert retries == {"a": 0, "b": 0}
    assert waited > 0.5  # b waited for a's turn to end
    assert b.con.execute(
        "SELECT (SELECT count(*) FROM x), (SELECT count(*) FROM y)"
    ).fetchone() == (
        1,
        1,
    )


def test_only_a_sqlite_catalog_has_turns(tmp_path: Path) -> None:
    assert warehouse.writer_turns(str(tmp_path / "catalog.sqlite")) is not None
    assert warehouse.writer_turns("postgres:dbname=lake host=db") is None
