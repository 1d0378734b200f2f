"""The zombie fence of the loader on a PostgreSQL catalog (real server, real DuckLake).

Two loader instances, each with its own warehouse session, hold the same offsets of one partition:
the first is paused inside its transaction, just before COMMIT (where a SIGSTOP or a long GC
pause would find it); the second, to which the partition moved, lands the same batch meanwhile.
With the partition's advisory lock the second waits for the first's COMMIT and then, reading the
ledger inside its own transaction, drops every offset the first loaded. Without it (DuckLake
lets two appending transactions commit side by side) both commit the same offsets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from headrace.codec.registry import default_registry
from headrace.lake import bookkeeping, warehouse
from headrace.runtime.settings import CommonSettings
from services.loader import runner
from services.loader.core import decode_batch
from services.loader.runner import LoaderHandler
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
