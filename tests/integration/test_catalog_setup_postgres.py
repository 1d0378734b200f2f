"""Replicas starting at once on a new PostgreSQL catalog: every one attaches, each migration is
applied once (an advisory lock around `warehouse.migrate`, a retried ATTACH while another process
creates DuckLake's tables). Without them, three processes on each of three new catalogs failed
to attach or recorded a migration twice in two of the three."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from headrace.dev.infra.postgres_server import PostgresServer
from headrace.lake import warehouse
from headrace.runtime.paths import WAREHOUSE_DDL_DIR
from headrace.runtime.settings import CommonSettings

STARTERS = 3


def start_one(url: str, bucket: str, applied: multiprocessing.Queue[int]) -> None:
    con = warehouse.connect(CommonSettings(catalog_url=url, bucket_url=bucket))
    applied.put(len(warehouse.migrate(con)))


def test_replicas_starting_at_once_attach_and_migrate_once(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    files = len(list(WAREHOUSE_DDL_DIR.glob("*.sql")))
    spawn = multiprocessing.get_context("spawn")
    for n in range(3):
        url = postgres.create_database(f"setup_race_{n}")
        applied: multiprocessing.Queue[int] = spawn.Queue()
        starters = [
            spawn.Process(target=start_one, args=(url, str(tmp_path / "bucket"), applied))
            for _ in range(STARTERS)
        ]
        for p in starters:
            p.start()
        for p in starters:
            p.join(120)
        assert [p.exitcode for p in starters] == [0] * STARTERS, "a starter failed to attach"
        counts = sorted(applied.get(timeout=5) for _ in starters)
        assert counts == [0] * (STARTERS - 1) + [files]
        con = warehouse.connect(
            CommonSettings(catalog_url=url, bucket_url=str(tmp_path / "bucket"))
        )
        assert (
            con.execute(
                "SELECT name FROM schema_migration GROUP BY name HAVING count(*) > 1"
            ).fetchall()
            == []
        )
        con.close()
