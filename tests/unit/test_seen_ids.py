from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headrace.lake.bucket import Bucket
from services.loader import seen_ids
from services.loader.id_snapshots import IdSnapshots
from services.loader.seen_ids import PartitionIds


def test_partition_ids_answer_as_a_set_across_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seen_ids, "MERGE_AT_LEAST", 50)
    rng = np.random.default_rng(7)
    first = rng.integers(-(2**62), 2**62, 300, dtype=np.int64)
    ids, expected = PartitionIds(first), set(first.tolist())
    merges = 0
    for _ in range(40):
        chunk = rng.integers(-(2**62), 2**62, 20, dtype=np.int64)
        chunk[:3] = rng.choice(first, 3)  # some are already there
        before = len(ids.large)
        ids.add(chunk)
        merges += len(ids.large) != before
        expected.update(chunk.tolist())
        probe = np.concatenate([chunk, rng.integers(-(2**62), 2**62, 50, dtype=np.int64)])
        assert ids.contains(probe).tolist() == [int(i) in expected for i in probe]
    assert len(ids) == len(expected)
    assert merges >= 3  # the recent array did merge into the large one, more than once


def test_empty_partition_contains_nothing() -> None:
    ids = PartitionIds(np.empty(0, np.int64))
    assert ids.contains(np.array([0, 1], np.int64)).tolist() == [False, False]


def test_saved_ids_keep_the_newest_copies_and_never_one_past_the_ledger(tmp_path: Path) -> None:
    snapshots = IdSnapshots(Bucket.open(str(tmp_path)), "t")
    for offset in (10, 20, 30):
        snapshots.save(1, np.arange(offset, dtype=np.int64), offset)
    assert [offset for _, offset in snapshots._saved(1)[0]] == [20, 30]  # the oldest deleted
    newest = snapshots.newest(1, at_most=30)
    assert newest is not None
    ids, offset, deltas = newest
    assert (offset, deltas) == (30, 0) and ids.tolist() == list(range(30))
    assert (snapshots.newest(1, at_most=25) or (None, None))[1] == 20
    assert snapshots.newest(1, at_most=19) is None
    assert snapshots.newest(2, at_most=100) is None


def test_deltas_continue_a_copy_up_to_the_ledger_and_stop_at_a_gap(tmp_path: Path) -> None:
    snapshots = IdSnapshots(Bucket.open(str(tmp_path)), "t")
    snapshots.save(0, np.arange(10, dtype=np.int64), 10)
    for start, end in ((10, 12), (12, 15), (15, 16), (20, 22)):  # 16-20 was never saved
        snapshots.save_delta(0, np.arange(start, end, dtype=np.int64), start, end)
    snapshots.flush()
    got = snapshots.newest(0, at_most=30)
    assert got is not None
    ids, offset, deltas = got
    assert (offset, deltas) == (16, 3) and sorted(ids.tolist()) == list(range(16))
    # Never past the ledger: a delta that ends beyond it is not used.
    got = snapshots.newest(0, at_most=14)
    assert got is not None and got[1:] == (12, 1)


def test_deltas_from_the_first_offset_need_no_copy(tmp_path: Path) -> None:
    snapshots = IdSnapshots(Bucket.open(str(tmp_path)), "t")
    snapshots.save_delta(0, np.array([5, 7], np.int64), 0, 2)
    snapshots.save_delta(0, np.array([9], np.int64), 2, 4)
    snapshots.flush()
    got = snapshots.newest(0, at_most=4)
    assert got is not None and sorted(got[0].tolist()) == [5, 7, 9] and got[1:] == (4, 2)


def test_a_copy_deletes_the_deltas_the_kept_copies_cover(tmp_path: Path) -> None:
    snapshots = IdSnapshots(Bucket.open(str(tmp_path)), "t")
    for start in range(0, 8, 2):
        snapshots.save_delta(0, np.arange(start, start + 2, dtype=np.int64), start, start + 2)
    snapshots.flush()
    snapshots.save(0, np.arange(4, dtype=np.int64), 4)
    snapshots.save(0, np.arange(8, dtype=np.int64), 8)
    copies, deltas = snapshots._saved(0)
    # Both copies kept; the deltas after the older one stay, as the way back should the newer
    # copy be unreadable.
    assert [offset for _, offset in copies] == [4, 8]
    assert sorted((b, e) for _, b, e in deltas) == [(4, 6), (6, 8)]
    Path(copies[1][0]).write_bytes(b"damaged")
    got = snapshots.newest(0, at_most=8)
    assert got is not None and sorted(got[0].tolist()) == list(range(8)) and got[1:] == (8, 2)


def test_an_unreadable_copy_means_reading_the_fact_table(tmp_path: Path) -> None:
    snapshots = IdSnapshots(Bucket.open(str(tmp_path)), "t")
    snapshots.save(0, np.arange(5, dtype=np.int64), 5)
    ((url, _),) = snapshots._saved(0)[0]
    Path(url).write_bytes(b"not numpy")
    assert snapshots.newest(0, at_most=5) is None
