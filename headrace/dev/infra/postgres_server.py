"""A real PostgreSQL server (Debian's package) for the DuckLake catalog, run from the state folder.

Data, log and socket live under `<state_dir>/postgres`, so a restart keeps the catalog. The user,
database and password are those of docker-compose.yml's postgres service (`headrace`, `headrace`,
`headrace-laptop` by default), so a catalog URL works the same against either. PostgreSQL refuses
to run as root, so as root every server command runs as `nobody` (runuser), which then owns the
folder. `pg_ctl start` detaches the server into its own session: it outlives the caller, and
`stop` (pg_ctl's fast shutdown) ends it.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import psycopg

from headrace.dev.infra.config import InfraSettings
from headrace.runtime.errors import OperatorError

USER = "headrace"
DATABASE = "headrace"
RUN_AS = "nobody"
# Debian's layout: /usr/lib/postgresql/<major>/bin; the newest major is used.
SERVER_ROOT = Path("/usr/lib/postgresql")


def server_bin(name: str) -> str:
    """The newest installed PostgreSQL server binary `name` (initdb, pg_ctl)."""
    versions = sorted(
        SERVER_ROOT.glob(f"*/bin/{name}"),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parts[-3])],
    )
    found = str(versions[-1]) if versions else shutil.which(name)
    if found is None:
        raise OperatorError(
            f"PostgreSQL's server is not installed (no {name} in {SERVER_ROOT}/*/bin or on PATH); "
            "apt-get install postgresql"
        )
    return found


class PostgresServer:
    def __init__(self, infra: InfraSettings) -> None:
        self.infra = infra
        self.home = infra.state_dir.resolve() / "postgres"
        self.data = self.home / "data"
        self.log_file = self.home / "postgres.log"

    @property
    def catalog_url(self) -> str:
        """HEADRACE_CATALOG_URL for this server (the password comes from PGPASSWORD)."""
        return self.catalog_url_of(DATABASE)

    def catalog_url_of(self, database: str) -> str:
        port = self.infra.postgres_port
        return f"postgres:dbname={database} host=127.0.0.1 port={port} user={USER}"

    def create_database(self, database: str) -> str:
        """A new, empty database (dropped first if it exists); its HEADRACE_CATALOG_URL."""
        with self.connect("postgres") as con:
            con.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            con.execute(f'CREATE DATABASE "{database}"')
        return self.catalog_url_of(database)

    @property
    def password(self) -> str:
        return self.infra.postgres_password

    def _as_server_user(self) -> list[str]:
        return ["runuser", "-u", RUN_AS, "--"] if os.geteuid() == 0 else []

    def _server(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [*self._as_server_user(), *args]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if check and result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise OperatorError(
                f"{Path(args[0]).name} failed: {' | '.join(tail)}; see {self.log_file}"
            )
        return result

    def _prepare_home(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        nobody = pwd.getpwnam(RUN_AS)
        for path in (self.home, *self.home.rglob("*")):
            os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
        if self._server("test", "-w", str(self.home), check=False).returncode != 0:
            raise OperatorError(
                f"PostgreSQL runs as {RUN_AS} under root, and {RUN_AS} cannot reach {self.home}; "
                "set HEADRACE_INFRA_STATE_DIR to a folder whose parents all users may enter"
            )

    def _initdb(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        pwfile = self.home / "initdb.pw"
        pwfile.write_text(self.password)
        if os.geteuid() == 0:
            nobody = pwd.getpwnam(RUN_AS)
            os.chown(pwfile, nobody.pw_uid, nobody.pw_gid)
        try:
            self._server(
                server_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def pid(self) -> int | None:
        """The server's PID while it runs (its postmaster.pid names a live process)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid

    def start(self, timeout: float = 60.0) -> int:
        """Create (once) and start the server and its database; the running one if started."""
        server_bin("pg_ctl")  # not installed: say so before creating anything
        if self.pid() is None:
            self._prepare_home()
            self._initdb()
            port = self.infra.postgres_port
            options = f"-p {port} -k {self.home} -c listen_addresses=127.0.0.1"
            self._server(
                server_bin("pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                str(int(timeout)),
                "start",
            )
        self._create_database()
        found = self.pid()
        if found is None:
            raise OperatorError(f"PostgreSQL exited at start; see {self.log_file}")
        return found

    def connect(self, dbname: str = DATABASE) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host="127.0.0.1",
            port=self.infra.postgres_port,
            user=USER,
            password=self.password,
            dbname=dbname,
            autocommit=True,
        )

    def _create_database(self) -> None:
        with self.connect("postgres") as con:
            if con.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
                return
            con.execute(f'CREATE DATABASE "{DATABASE}"')

    def stop(self) -> bool:
        """Fast shutdown (sessions ended, a clean checkpoint); True if one was running."""
        if self.pid() is None:
            return False
        self._server(server_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        return True

    def status(self) -> str:
        pid = self.pid()
        if pid is None:
            return "postgres: stopped"
        return (
            f"postgres: running (pid {pid}), data in {self.data}\n"
            f"  HEADRACE_CATALOG_URL='{self.catalog_url}'\n"
            f"  PGPASSWORD='{self.password}'"
        )
