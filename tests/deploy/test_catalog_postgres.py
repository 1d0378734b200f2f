"""The shared catalog as compose and Kubernetes configure it: DuckLake on PostgreSQL, the password
in PGPASSWORD (never in the URL), against a real PostgreSQL server (Debian's package)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from headrace.dev.infra.ports import free_port_block
from headrace.lake import warehouse
from headrace.runtime.errors import OperatorError
from headrace.runtime.settings import CommonSettings
from tests.deploy.prometheus_server import REPO, yaml

pytestmark = pytest.mark.integration


@dataclass
class Postgres:
    port: int
    user: str
    database: str
    password: str


def postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if found is None:
        pytest.skip(f"{name} not installed (apt-get install postgresql)")
    return found


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    env = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["postgres"]
    user, database = env["environment"]["POSTGRES_USER"], env["environment"]["POSTGRES_DB"]
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    home = Path(tempfile.mkdtemp(prefix="headrace-pg-"))
    # PostgreSQL refuses to run as root: run it as `nobody` then.
    as_user: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(home, nobody.pw_uid, nobody.pw_gid)
        as_user = ["runuser", "-u", "nobody", "--"]
    pg = Postgres(free_port_block(1), user, database, "catalog-test-password")
    (home / "pw").write_text(pg.password)
    (home / "pw").chmod(0o644)
    data = home / "data"
    run = [*as_user, initdb, "-D", str(data), "-U", user, f"--pwfile={home / 'pw'}"]
    subprocess.run([*run, "--auth=scram-sha-256"], check=True, capture_output=True)
    options = f"-p {pg.port} -k {home} -c listen_addresses=127.0.0.1"
    start = [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(home / "log"), "-w"]
    subprocess.run([*start, "start"], check=True, capture_output=True)
    try:
        createdb = postgres_bin("createdb")
        subprocess.run(
            [createdb, "-h", "127.0.0.1", "-p", str(pg.port), "-U", user, database],
            check=True,
            capture_output=True,
            env={**os.environ, "PGPASSWORD": pg.password},
        )
        yield pg
    finally:
        stop = [*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"]
        subprocess.run(stop, check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def test_warehouse_on_postgres_with_the_password_from_pgpassword(
    postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    url = compose["services"]["loader"]["environment"]["HEADRACE_CATALOG_URL"]
    url = url.replace("host=postgres", f"host=127.0.0.1 port={postgres.port}")
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
