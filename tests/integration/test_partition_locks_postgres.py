"""Advisory locks on a real PostgreSQL: a killed holder frees them, a live one keeps them, and
writers that want overlapping partitions in any order never deadlock."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

from headrace.dev.infra.postgres_server import PostgresServer
from headrace.lake.partition_locks import PartitionLocks, partition_key, single_key

HOLD = """
import sys, time
from headrace.lake.partition_locks import PartitionLocks, partition_key
locks = PartitionLocks(sys.argv[1])
with locks.held([partition_key("g", "t", 0)]):
    print("held", flush=True)
    time.sleep(600)
"""


def conninfo(postgres: PostgresServer) -> str:
    return postgres.catalog_url.removeprefix("postgres:")


def test_a_killed_holder_frees_its_locks_a_live_one_keeps_them(postgres: PostgresServer) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, conninfo(postgres)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        other = PartitionLocks(conninfo(postgres))
        got = threading.Event()

        def take() -> None:
            with other.held([partition_key("g", "t", 0)]):
                got.set()

        waiter = threading.Thread(target=take, daemon=True)
        waiter.start()
        assert not got.wait(2), "a lock another process holds was granted"
        holder.send_signal(signal.SIGKILL)
        assert got.wait(10), "the killed holder's lock was not freed"
        waiter.join(10)
        other.close()
    finally:
        holder.kill()
        holder.wait()


def test_overlapping_sets_in_any_order_never_deadlock(postgres: PostgresServer) -> None:
    keys = [partition_key("g", "t", p) for p in range(4)]
    done = []

    def writer(order: list[tuple[int, int]]) -> None:
        locks = PartitionLocks(conninfo(postgres))
        for _ in range(30):
            with locks.held(order):
                time.sleep(0.001)
        locks.close()
        done.append(order)

    threads = [
        threading.Thread(target=writer, args=(order,), daemon=True)
        for order in (keys, list(reversed(keys)), [keys[2], keys[0], keys[3]])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(done) == 3, "writers deadlocked"


def test_keys_are_stable_and_apart() -> None:
    # The same in every process (Python's hash() of a str is not), and the summarizer's lock
    # is none of a loader's.
    assert partition_key("g", "t", 3) == partition_key("g", "t", 3)
    assert partition_key("g", "t", 3)[1] == 3
    assert single_key("summary_refresh") not in {partition_key("g", "t", p) for p in range(64)}
    assert all(-(2**31) <= k[0] < 2**31 for k in (partition_key("x", "y", 0), single_key("z")))
