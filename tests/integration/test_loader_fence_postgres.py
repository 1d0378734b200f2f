"""The zombie fence of the loader on a PostgreSQL catalog (real server, real DuckLake).

Two loader instances hold the same offsets: the first is paused inside its transaction, just
before COMMIT (where a SIGSTOP or a long GC pause would find it); the second, to which the
partitions moved, lands the same offsets meanwhile. With the partitions' advisory locks the second
waits for the first's COMMIT and then, reading the ledger inside its own transaction, drops every
offset the first loaded. Without them (DuckLake lets two appending transactions commit side by
side) both commit the same offsets. Once with two handlers in this process and a hook holding
the first, which pins the exact interleaving; once with two loader processes on the real broker,
the first SIGSTOPped by HEADRACE_PAUSE_AT until its group has handed its partitions over.
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from headrace.audit.invariants import Checker
from headrace.codec.registry import default_registry
from headrace.dev.infra.ports import free_port_block
from headrace.dev.infra.postgres_server import PostgresServer
from headrace.dev.local_pipeline import SERVICES, LocalPipeline
from headrace.dev.sample_events import generate
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics, ensure_pipeline_topics
from headrace.lake import bookkeeping, warehouse
from headrace.runtime.crash_points import PAUSE_ENV
from headrace.runtime.settings import CommonSettings
from services.loader import runner
from services.loader.core import decode_batch
from services.loader.runner import LoaderHandler
from services.producer.runner import replay
from tests.conftest import env_of, wait_settled
from tests.unit.test_loader_and_summary import NO_PRODUCER, TOPICS, event

pytestmark = pytest.mark.integration
GROUP = "loader-group"


class PausedBeforeCommit:
    """A crash-point hook that holds the first loader's thread at `loader.before_commit`."""

    def __init__(self, paused_thread: str) -> None:
        self.paused_thread = paused_thread
        self.reached, self.resume = threading.Event(), threading.Event()

    def __call__(self, name: str) -> None:
        if name == "loader.before_commit" and threading.current_thread().name == self.paused_thread:
            self.reached.set()
            assert self.resume.wait(60), "the test never resumed the paused loader"


def loader(common: CommonSettings, instance: str) -> LoaderHandler:
    session = warehouse.Session(common)
    return LoaderHandler(
        session, NO_PRODUCER, TOPICS, GROUP, instance, "salt", default_registry(), None
    )


def batch(offsets: range) -> Any:
    registry = default_registry()
    return decode_batch(
        TOPICS.validated,
        [registry.encode("transaction.v1.avsc", event(1000 + o, 20)) for o in offsets],
        [0] * len(offsets),
        list(offsets),
        [None] * len(offsets),
        registry.definition,
    )


def in_thread(name: str, work: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []
    thread = threading.Thread(target=lambda: out.append(work()), name=name, daemon=True)
    thread.start()
    return thread, out


def test_a_paused_loader_and_its_successor_never_both_load_an_offset(
    postgres_catalog: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = CommonSettings(catalog_url=postgres_catalog, bucket_url=str(tmp_path / "bucket"))
    warehouse.migrate(warehouse.connect(common))
    hook = PausedBeforeCommit("zombie")
    monkeypatch.setattr(runner, "crash_point", hook)
    zombie, successor = loader(common, "zombie"), loader(common, "successor")

    paused, paused_out = in_thread("zombie", lambda: zombie.load(batch(range(0, 50)), "z-1"))
    assert hook.reached.wait(60), "the first loader never reached its commit"
    # The successor was assigned the partition: the ledger it seeks to does not have the zombie's
    # batch, so it consumed the same offsets and more.
    taking_over, taking_out = in_thread(
        "successor", lambda: successor.load(batch(range(0, 80)), "s-1")
    )
    taking_over.join(3)
    waited = taking_over.is_alive()  # fenced: waiting for the paused one's locks
    hook.resume.set()
    paused.join(60)
    taking_over.join(60)
    assert not paused.is_alive() and not taking_over.is_alive()

    con = warehouse.connect(common, read_only=True)
    repeated = con.execute(
        "SELECT count(*) - count(DISTINCT (source_partition, source_offset)) FROM transaction_fact"
    ).fetchone()
    assert repeated == (0,), "offsets loaded by both loaders"
    assert con.execute("SELECT count(*) FROM transaction_fact").fetchone() == (80,)
    assert bookkeeping.ledger_offsets(con, GROUP, TOPICS.validated) == {0: 80}
    rows = dict(con.execute("SELECT batch_id, fact_rows FROM load_batch").fetchall())
    assert rows == {"z-1": 50, "s-1": 30}  # the successor loaded only what the zombie had not
    assert waited, "the successor committed while the paused loader held the partition"
    assert paused_out[0] is not None and taking_out[0] is not None


def stopped(pid_file: Path) -> bool:
    """Whether the process of `pid_file` is stopped (SIGSTOP), as /proc shows it."""
    try:
        pid = pid_file.read_text().strip()
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "T"
    except (FileNotFoundError, IndexError):
        return False


def waiting_for_a_lock(postgres: PostgresServer, database: str) -> bool:
    with postgres.connect(database) as con:
        row = con.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
    return bool(row and row[0])


def until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@pytest.mark.timeout(600)
def test_a_sigstopped_loader_process_and_its_successor_never_both_load_an_offset(
    bootstrap: str, postgres: PostgresServer, tmp_path: Path
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    database = prefix.replace("-", "_")
    common = CommonSettings(
        bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        bucket_url=str(tmp_path / "bucket"),
        catalog_url=postgres.create_database(database),
    )
    ensure_pipeline_topics(kafka_clients.admin(bootstrap), Topics(prefix))
    warehouse.migrate(warehouse.connect(common))
    home = tmp_path / "pipeline"
    env = {
        **env_of(common, home),
        # The group hands a stopped member's partitions over within seconds.
        "HEADRACE_LOADER_SESSION_TIMEOUT_MS": "6000",
        "HEADRACE_LOADER_MAX_POLL_INTERVAL_MS": "8000",
    }
    pipeline = LocalPipeline(home, env, port_base=free_port_block())
    try:
        for service in SERVICES:
            paused = {PAUSE_ENV: "loader.before_commit"} if service == "loader" else None
            pipeline.start_instance(service, extra_env=paused)
        pipeline.wait_ready()
        sample = tmp_path / "sample.jsonl"
        expected = generate(sample, 3_000, bad_ratio=0.0, seed=23)
        assert replay(sample, common, show_progress=False) == 3_000

        zombie = pipeline.pid_file("loader")
        assert until(lambda: stopped(zombie), 60), "the loader never paused in its transaction"
        pipeline.start_instance("loader", 1)  # the successor: the group moves the partitions
        waited = until(lambda: waiting_for_a_lock(postgres, database), 45)
        pipeline.signal("loader", signal.SIGCONT)
        counts = wait_settled(common, 3_000, pipeline, timeout=180)
    finally:
        pipeline.stop()

    assert counts.fact_rows == expected["VALID"] and counts.duplicates == 0
    verdicts = {v.name.split()[0]: v for v in Checker(common).run()}
    assert verdicts["I2"].ok, verdicts["I2"].detail
    assert verdicts["I1"].ok, verdicts["I1"].detail
    log = pipeline.log_file("loader", 1).read_text()
    assert "already loaded by another instance; skipped" in log  # the race did happen
    assert waited, "the successor never waited for the paused loader's partitions"
