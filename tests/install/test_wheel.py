"""The wheel as a user gets it: built from the tree, installed into a fresh venv, the demo run.

The wheel is built offline (no build isolation: the dev venv has the build backend) from a copy
of the checkout, so neither a stale build/ folder nor the checkout's own files can stand in for
what the wheel lacks. The fresh venv gets the project from the wheel alone and the dependencies
from the dev venv, through a .pth line: a directory added that way has its own .pth files (the
editable install's finder among them) ignored, so the checkout's package cannot leak in; the
tests check where `headrace` was imported from. Everything runs with the current directory
outside the checkout, as an installed command would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import headrace
from headrace.dev.infra.ports import free_port_block

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DEMO_EVENTS = 2_000
# What is not source: the checkout's venv, caches, build outputs and local state.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".headrace",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "test-artifacts",
)


@dataclass
class Install:
    venv: Path
    site_packages: Path
    deps: Path  # the dev venv's site-packages, seen through the .pth line

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def env(self, **extra: str) -> dict[str, str]:
        """A user's environment: this venv first on PATH, no HEADRACE_* or PYTHON* leftovers."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("HEADRACE_", "PYTHON", "VIRTUAL_ENV"))
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        return {**env, **extra}


def run(cmd: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd[:3]} exited {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "headrace"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    dist = tmp_path_factory.mktemp("dist")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index"]
    run([*pip_wheel, "--no-build-isolation", str(source), "-w", str(dist)], dist, timeout=120)
    (built,) = dist.glob("headrace-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    venv = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", str(venv)], venv, timeout=120)
    python = str(venv / "bin" / "python")
    pip_install = [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    run([*pip_install, "--disable-pip-version-check", str(wheel)], venv, timeout=120)
    site_packages = Path(
        run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], venv, 30
        ).strip()
    )
    deps = Path(sysconfig.get_path("purelib"))
    (site_packages / "headrace-test-dependencies.pth").write_text(f"{deps}\n")
    return Install(venv, site_packages, deps)


def test_the_wheel_has_every_module_and_the_data_files_and_nothing_else(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    metadata = f"headrace-{headrace.__version__}.dist-info"
    assert {n.split("/")[0] for n in names} == {"headrace", "services", metadata}
    modules = {
        p.relative_to(REPO).as_posix()
        for top in ("headrace", "services")
        for p in REPO.glob(f"{top}/**/*.py")
    }
    assert {n for n in names if n.endswith(".py")} == modules
    data = {
        f"headrace/{p.relative_to(REPO).as_posix()}"
        for top in ("schemas", "infra")
        for p in REPO.glob(f"{top}/**/*")
        if p.is_file()
    }
    assert {n for n in names if n.startswith(("headrace/schemas/", "headrace/infra/"))} == data
    assert "headrace/schemas/warehouse/001_star_schema.sql" in data


def test_the_installed_package_reads_its_own_schemas_migrations_and_pom(
    installed: Install, tmp_path: Path
) -> None:
    probe = """
import json, duckdb, headrace, services
from headrace.runtime import paths
print(json.dumps({
    "headrace": headrace.__file__,
    "services": services.__file__,
    "duckdb": duckdb.__file__,
    "schemas": str(paths.SCHEMAS_DIR),
    "pom": paths.KAFKA_POM.read_text(),
    "migrations": {f.name: f.read_text() for f in sorted(paths.WAREHOUSE_DDL_DIR.glob("*.sql"))},
}))
"""
    found = json.loads(
        run([str(installed.bin / "python"), "-c", probe], tmp_path, 60, installed.env())
    )
    for package in ("headrace", "services"):
        assert Path(found[package]).is_relative_to(installed.site_packages), found[package]
    assert Path(found["duckdb"]).is_relative_to(installed.deps)  # dependencies from the dev venv
    assert Path(found["schemas"]) == installed.site_packages / "headrace" / "schemas"
    assert found["pom"] == (REPO / "infra" / "kafka" / "pom.xml").read_text()
    in_repo = {
        f.name: f.read_text() for f in sorted((REPO / "schemas" / "warehouse").glob("*.sql"))
    }
    assert found["migrations"] == in_repo


@pytest.mark.timeout(420)
def test_the_installed_demo_runs_outside_the_checkout(installed: Install, tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    kafka = free_port_block(3)
    # An empty jar cache: Maven resolves the broker with the pom from the installed package.
    env = installed.env(
        HEADRACE_INFRA_KAFKA_PORT=str(kafka),
        HEADRACE_INFRA_KAFKA_CONTROLLER_PORT=str(kafka + 1),
        HEADRACE_INFRA_KAFKA_METRICS_PORT=str(kafka + 2),
        HEADRACE_INFRA_KAFKA_HEAP="512m",
        HEADRACE_INFRA_CACHE_DIR=str(tmp_path / "cache"),
    )
    demo = [str(installed.bin / "headrace"), "demo", "--events", str(DEMO_EVENTS)]
    out = run([*demo, "--port-base", str(free_port_block())], cwd, timeout=360, env=env)

    sample = re.search(r"\(([\d,]+) valid, ([\d,]+) bad\)", out)
    landed = re.search(r"([\d,]+) = ([\d,]+) \+ ([\d,]+) \+ ([\d,]+): holds", out)
    assert sample and landed, out
    valid, bad = (int(n.replace(",", "")) for n in sample.groups())
    raw_in, facts, duplicates, errors = (int(n.replace(",", "")) for n in landed.groups())
    assert valid + bad == raw_in == DEMO_EVENTS
    assert (facts, duplicates, errors) == (valid, 0, bad) and bad > 0

    # What it wrote is under the current directory, and the warehouse answers from the install.
    demo_home = cwd / ".headrace" / "demo"
    assert any((demo_home / "bucket" / "clean" / "main" / "transaction_fact").rglob("*.parquet"))
    assert any((demo_home / "bucket" / "raw").rglob("*.jsonl"))
    assert (cwd / ".headrace" / "infra" / "kafka" / "data").is_dir()
    version = re.search(r"<kafka.version>([^<]+)<", (REPO / "infra/kafka/pom.xml").read_text())
    assert version and any((tmp_path / "cache" / f"kafka-{version[1]}" / "libs").glob("kafka_*"))
    assert not list(installed.venv.rglob(".headrace"))
    warehouse_env = installed.env(
        HEADRACE_CATALOG_URL=str(demo_home / "warehouse" / "catalog.sqlite"),
        HEADRACE_BUCKET_URL=str(demo_home / "bucket"),
    )
    sql = [str(installed.bin / "headrace"), "sql", "--format", "json"]
    query = "SELECT (SELECT count(*) FROM transaction_view) AS facts, " + (
        "(SELECT list(name ORDER BY name) FROM schema_migration) AS migrations"
    )
    (row,) = json.loads(run([*sql, query], cwd, timeout=60, env=warehouse_env))
    assert row["facts"] == facts
    assert row["migrations"] == sorted(f.name for f in (REPO / "schemas/warehouse").glob("*.sql"))
