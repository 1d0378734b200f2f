"""The shared catalog as compose and Kubernetes configure it: DuckLake on PostgreSQL, the password
in PGPASSWORD (never in the URL), against a real PostgreSQL server (Debian's package, started by
headrace/dev/infra/postgres_server.py through the `postgres` fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest

from headrace.dev.infra.postgres_server import DATABASE, PostgresServer
from headrace.lake import warehouse
from headrace.runtime.errors import OperatorError
from headrace.runtime.settings import CommonSettings
from tests.deploy.prometheus_server import REPO, yaml

pytestmark = pytest.mark.integration


def test_the_local_server_has_compose_s_user_and_database(postgres: PostgresServer) -> None:
    env = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["postgres"]
    assert env["environment"]["POSTGRES_USER"] in postgres.catalog_url
    assert env["environment"]["POSTGRES_DB"] == DATABASE
    assert f"${{CATALOG_PASSWORD:-{postgres.password}}}" == env["environment"]["POSTGRES_PASSWORD"]


def test_warehouse_on_postgres_with_the_password_from_pgpassword(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    url = compose["services"]["loader"]["environment"]["HEADRACE_CATALOG_URL"]
    fresh = postgres.create_database("compose_check")
    port = postgres.infra.postgres_port
    url = url.replace("host=postgres", f"host=127.0.0.1 port={port}")
    url = url.replace(f"dbname={DATABASE}", "dbname=compose_check")
    assert set(url.split()) == set(fresh.split())  # the same server and database
    common = CommonSettings(catalog_url=url, bucket_url=str(tmp_path / "bucket"))

    monkeypatch.delenv("PGPASSWORD", raising=False)
    with pytest.raises(OperatorError, match="password"):
        warehouse.connect(common)

    monkeypatch.setenv("PGPASSWORD", postgres.password)
    writer = warehouse.connect(common)
    assert "001_star_schema.sql" in warehouse.migrate(writer)
    writer.execute("CREATE TABLE catalog_check AS SELECT 'b-1' AS batch_id")
    reader = warehouse.connect(common, read_only=True)
    assert reader.execute("SELECT batch_id FROM catalog_check").fetchall() == [("b-1",)]
