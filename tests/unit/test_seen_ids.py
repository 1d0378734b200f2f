from __future__ import annotations

import numpy as np
import pytest

from services.loader import seen_ids
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
