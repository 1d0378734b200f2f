"""headrace_catalog_up from a service's real catalog calls, against a PostgreSQL that stops."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from prometheus_client import REGISTRY

from headrace.dev.infra.postgres_server import PostgresServer
from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings

pytestmark = pytest.mark.integration


def catalog_up(service: str) -> float | None:
    return REGISTRY.get_sample_value("headrace_catalog_up", {"service": service})


def count_batches(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM load_batch").fetchone()
    assert row is not None
    return int(row[0])


def test_a_stopped_catalog_sets_the_gauge_to_0_and_its_return_to_1(
    stoppable_postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", stoppable_postgres.password)
    common = CommonSettings(
        catalog_url=stoppable_postgres.catalog_url, bucket_url=str(tmp_path / "bucket")
    )
    session = warehouse.Session(common, service="health-check")
    warehouse.migrate(session.con)
    assert catalog_up("health-check") == 1

    stoppable_postgres.stop()
    with pytest.raises(duckdb.Error, match="Unable to connect to Postgres"):
        session.read(count_batches)
    assert catalog_up("health-check") == 0

    stoppable_postgres.start()
    assert session.read(count_batches) == 0
    assert catalog_up("health-check") == 1


def test_a_transaction_failing_on_its_data_leaves_the_catalog_up(tmp_path: Path) -> None:
    common = CommonSettings(
        catalog_url=str(tmp_path / "catalog.sqlite"), bucket_url=str(tmp_path / "bucket")
    )
    session = warehouse.Session(common, service="data-check")
    warehouse.migrate(session.con)
    with pytest.raises(duckdb.ConversionException):
        session.read(lambda con: con.execute("SELECT 'not a number'::INTEGER").fetchall())
    assert catalog_up("data-check") == 1
    # A session without a service (a command, a reader) exports nothing.
    warehouse.Session(common, read_only=True)
    assert catalog_up("") is None
