"""Operator mistakes get one line that says what to do, and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def headrace(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "headrace", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_missing_file(tmp_path: Path) -> None:
    result = headrace(
        "replay", str(tmp_path / "nope.jsonl"), env={"HEADRACE_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    )
    assert_one_line_error(result)


def test_no_broker(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_text("{}\n")
    result = headrace("replay", str(f), env={"HEADRACE_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert_one_line_error(result, "no Kafka broker answers at 127.0.0.1:1", "headrace infra start")


@pytest.mark.parametrize("service", ["stager", "validator", "loader"])
def test_bad_setting_names_the_variable(service: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, f"HEADRACE_{service.upper()}_PORT": "eighty"},
    )
    assert_one_line_error(result, f"HEADRACE_{service.upper()}_PORT")


def test_unreadable_file(tmp_path: Path) -> None:
    f = tmp_path / "a.parquet"
    f.write_text("this is not parquet")
    result = headrace("replay", str(f), env={"HEADRACE_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.returncode == 2 and "Traceback" not in result.stderr


# Each mistake, and the commands and services that meet it at start. None needs a broker: the
# bucket and the catalog are checked before the broker is awaited.
BUCKET_USERS = [("sql", "select 1"), ("report",), ("errors",), ("check",), ("lag",)]
SERVICES_WITH_BUCKET = ["stager", "loader", "summarizer"]
SERVICES_WITH_CATALOG = ["loader", "summarizer"]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "HEADRACE_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "HEADRACE_BUCKET_URL": str(tmp_path / "bucket"),
        "HEADRACE_CATALOG_URL": str(tmp_path / "warehouse" / "catalog.sqlite"),
        **extra,
    }


def _service(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"services.{name}"],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **env},
    )


def _last_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """A service may log its start first; its error is then the one last line, exit 2."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("headrace: error: "), result.stderr
    for needle in needles:
        assert needle in last, result.stderr


def _under_a_file(tmp_path: Path) -> str:
    (tmp_path / "a-file").write_text("")
    return str(tmp_path / "a-file" / "bucket")


@pytest.mark.parametrize("args", BUCKET_USERS, ids=lambda a: a[0])
def test_bucket_under_a_file(tmp_path: Path, args: tuple[str, ...]) -> None:
    env = _env(tmp_path, HEADRACE_BUCKET_URL=_under_a_file(tmp_path))
    result = headrace(*args, env=env)
    assert_one_line_error(result, "HEADRACE_BUCKET_URL", "is a file, not a folder")


@pytest.mark.parametrize("service", SERVICES_WITH_BUCKET)
def test_service_bucket_under_a_file(tmp_path: Path, service: str) -> None:
    env = _env(tmp_path, HEADRACE_BUCKET_URL=_under_a_file(tmp_path))
    _last_line_error(_service(service, env), "HEADRACE_BUCKET_URL", "is a file, not a folder")


def test_bucket_under_proc(tmp_path: Path) -> None:
    result = headrace("sql", "select 1", env=_env(tmp_path, HEADRACE_BUCKET_URL="/proc/x/bucket"))
    assert_one_line_error(result, "HEADRACE_BUCKET_URL", "/proc/x/bucket", "cannot be created")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_bucket_not_writable(tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    bucket.chmod(0o555)
    try:
        result = _service("stager", _env(tmp_path))
    finally:
        bucket.chmod(0o755)
    _last_line_error(result, "HEADRACE_BUCKET_URL", "not writable")


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("s3://bucket/prefix", "is not supported"),
        ("gs://Not_A_Bucket!", "is not a valid bucket URL"),
        ("", "is empty"),
    ],
)
def test_bucket_url_rejected(tmp_path: Path, url: str, needle: str) -> None:
    result = headrace("sql", "select 1", env=_env(tmp_path, HEADRACE_BUCKET_URL=url))
    assert_one_line_error(result, "HEADRACE_BUCKET_URL", needle, "gs://bucket/prefix")
    _last_line_error(_service("stager", _env(tmp_path, HEADRACE_BUCKET_URL=url)), needle)


def test_gcs_unreachable(tmp_path: Path) -> None:
    env = _env(
        tmp_path, HEADRACE_BUCKET_URL="gs://lake", HEADRACE_GCS_ENDPOINT="http://127.0.0.1:1"
    )
    result = headrace("sql", "select 1", env=env)
    assert_one_line_error(result, "cannot reach GCS", "HEADRACE_GCS_ENDPOINT=http://127.0.0.1:1")


POSTGRES_DOWN = "postgres:host=127.0.0.1 port=1 dbname=lake user=headrace password=hunter2"


@pytest.mark.parametrize("args", [("sql", "select 1"), ("report",), ("check",)], ids=str)
def test_postgres_catalog_unreachable(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = headrace(*args, env=_env(tmp_path, HEADRACE_CATALOG_URL=POSTGRES_DOWN))
    assert_one_line_error(result, "PostgreSQL warehouse catalog", "HEADRACE_CATALOG_URL")
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize("service", SERVICES_WITH_CATALOG)
def test_service_postgres_catalog_unreachable(tmp_path: Path, service: str) -> None:
    result = _service(service, _env(tmp_path, HEADRACE_CATALOG_URL=POSTGRES_DOWN))
    _last_line_error(result, "PostgreSQL warehouse catalog", "Connection refused")
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("mysql://db/lake", "is not supported"),
        ("postgres:", "has no connection string"),
    ],
)
def test_catalog_url_rejected(tmp_path: Path, url: str, needle: str) -> None:
    result = headrace("sql", "select 1", env=_env(tmp_path, HEADRACE_CATALOG_URL=url))
    assert_one_line_error(result, "HEADRACE_CATALOG_URL", needle)


def test_sqlite_catalog_under_a_file(tmp_path: Path) -> None:
    env = _env(tmp_path, HEADRACE_CATALOG_URL=_under_a_file(tmp_path) + "/catalog.sqlite")
    _last_line_error(_service("loader", env), "HEADRACE_CATALOG_URL", "is a file, not a folder")
    result = headrace("sql", "select 1", env=env)
    assert_one_line_error(result, "HEADRACE_CATALOG_URL", "no warehouse catalog")


def test_sql_error_keeps_duckdb_hint(tmp_path: Path) -> None:
    from headrace.lake import warehouse
    from headrace.runtime.settings import CommonSettings

    env = _env(tmp_path)
    con = warehouse.connect(
        CommonSettings(
            bucket_url=env["HEADRACE_BUCKET_URL"], catalog_url=env["HEADRACE_CATALOG_URL"]
        ),
        service=True,
    )
    warehouse.migrate(con)
    con.close()
    result = headrace("sql", "select amount_typo from transaction_fact", env=env)
    assert_one_line_error(result, "Binder Error", "Candidate bindings", '"amount"')


def test_no_home_folder_for_duckdb(tmp_path: Path) -> None:
    result = _service("loader", _env(tmp_path, HOME=""))
    _last_line_error(result, "set HOME")
