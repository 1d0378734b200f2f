"""The project's own PostgreSQL for the catalog: idempotent start, data kept across a restart, the
catalog URL and password it prints, stop by `headrace infra stop`, one line when not installed."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from headrace.dev.infra import postgres_server
from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.ports import free_port_block
from headrace.dev.infra.postgres_server import PostgresServer
from headrace.lake import warehouse
from headrace.runtime.errors import OperatorError
from headrace.runtime.settings import CommonSettings
from tests.integration.test_operator_errors import headrace


@pytest.fixture
def state() -> Iterator[Path]:
    # A folder nobody may enter too (as root, PostgreSQL runs as nobody).
    folder = Path(tempfile.mkdtemp(prefix="headrace-pg-infra-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_start_is_idempotent_keeps_the_catalog_and_stops_from_the_cli(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    infra = InfraSettings(state_dir=state, postgres_port=free_port_block(1))
    server = PostgresServer(infra)
    env = {
        "HEADRACE_INFRA_STATE_DIR": str(state),
        "HEADRACE_INFRA_POSTGRES_PORT": str(infra.postgres_port),
    }
    try:
        pid = server.start()
        assert server.start() == pid  # a second start finds the running server
        assert (state / "postgres" / "data" / "PG_VERSION").exists()
        shown = headrace("infra", "status", env=env).stdout
        assert f"running (pid {pid})" in shown
        assert f"HEADRACE_CATALOG_URL='{server.catalog_url}'" in shown
        assert "PGPASSWORD='headrace-laptop'" in shown

        monkeypatch.setenv("PGPASSWORD", server.password)
        common = CommonSettings(catalog_url=server.catalog_url, bucket_url=str(state / "bucket"))
        con = warehouse.connect(common)
        warehouse.migrate(con)
        con.close()
        assert server.stop() and server.pid() is None
        assert "postgres: stopped" in headrace("infra", "status", env=env).stdout

        server.start()  # the same data folder: the catalog is still there
        again = warehouse.connect(common)
        assert warehouse.migrate(again) == []  # every migration already applied
        again.close()

        result = headrace("infra", "stop", env=env)
        assert result.returncode == 0 and "postgres: stopped" in result.stdout, result.stderr
        assert server.pid() is None
    finally:
        server.stop()


def test_not_installed_is_one_line_with_the_package_to_install(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres_server, "SERVER_ROOT", state / "no-postgresql")
    monkeypatch.setenv("PATH", str(state))
    server = PostgresServer(InfraSettings(state_dir=state, postgres_port=free_port_block(1)))
    with pytest.raises(OperatorError, match=r"apt-get install postgresql$"):
        server.start()
    assert not (state / "postgres").exists()  # nothing created before saying so
