"""A real PostgreSQL server (Debian's package) that a test can stop and start again.

The user and database are docker-compose.yml's (as in test_catalog_postgres.py). PostgreSQL refuses
to run as root, so as root it runs as `nobody`, which then owns its folder: a fresh one under the
system's temporary folder, since nobody cannot enter pytest's (mode 0700, root's).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.deploy.prometheus_server import REPO, yaml

PASSWORD = "catalog-monitoring-password"


def postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None
    )
    if found is None:
        pytest.skip(f"{name} not installed (apt-get install postgresql)")
    return found


class LocalPostgres:
    def __init__(self, port: int) -> None:
        compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
        env = compose["services"]["postgres"]["environment"]
        self.user, self.database = env["POSTGRES_USER"], env["POSTGRES_DB"]
        home = Path(tempfile.mkdtemp(prefix="headrace-pg-"))
        self.home, self.port, self.data = home, port, home / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(home, nobody.pw_uid, nobody.pw_gid)
            self.as_user = ["runuser", "-u", "nobody", "--"]

    @property
    def catalog_url(self) -> str:
        """HEADRACE_CATALOG_URL for this server; the password goes in PGPASSWORD."""
        return f"postgres:dbname={self.database} host=127.0.0.1 port={self.port} user={self.user}"

    def create(self) -> None:
        """initdb, start, and create the database."""
        pwfile = self.home / "pw"
        pwfile.write_text(PASSWORD)
        pwfile.chmod(0o644)
        initdb = [*self.as_user, postgres_bin("initdb"), "-D", str(self.data), "-U", self.user]
        subprocess.run(
            [*initdb, f"--pwfile={pwfile}", "--auth=scram-sha-256"], check=True, capture_output=True
        )
        self.start()
        createdb = [postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port)]
        subprocess.run(
            [*createdb, "-U", self.user, self.database],
            check=True,
            capture_output=True,
            env={**os.environ, "PGPASSWORD": PASSWORD},
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1"
        log = str(self.home / "log")
        self._pg_ctl("-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "-w", "stop", check=False)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        cmd = [*self.as_user, postgres_bin("pg_ctl"), "-D", str(self.data), *args]
        subprocess.run(cmd, check=check, capture_output=True)
