"""The transaction ids already in the fact table, per partition this loader owns.

The duplicate rule (first copy wins) needs, for every batch, which of its ids are already loaded.
Asking the fact table costs a read of every fact file whose id range covers the batch's; with
random ids (UUID-like upstream keys, the fault suite's generator) that is every file, so each batch
got slower as the warehouse grew, and on a slow bucket a loader that took over a backlog could not
catch up. Every copy of a transaction reaches the same partition (raw is keyed by transaction_id
and the validator keeps the partition), so the loader that owns a partition can keep that
partition's ids in memory instead: read once when it first meets the partition, then kept up to
date with what it commits.

The ids of a partition are only valid together with the ledger offset they reflect. Inside each
batch's warehouse transaction the loader compares that offset with the ledger it just read: if
another loader committed to the partition since (a replica that owned it meanwhile, a paused one
that woke up), the rows at and after the remembered offset are read again. The check therefore sees
exactly what the transaction's snapshot holds, and a commit over a newer snapshot fails and is
retried as before.

Memory: 8 bytes per loaded event of the owned partitions (16 while a merge runs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from services.loader.id_snapshots import IdSnapshots

Ids = npt.NDArray[np.int64]
# New ids collect in a small sorted array and merge into the large one when it reaches this
# share of it, so a batch costs O(batch + recent) and the large array is copied rarely.
MERGE_SHARE = 8
MERGE_AT_LEAST = 1 << 16
# A partition's ids are copied again once they grew by this many, or by an eighth, since the last
# copy (saving costs about eight times the ids' final size over the partition's life), or once
# MAX_DELTAS commits' deltas followed it: a restart reads one copy and at most that many deltas.
SAVE_AT_LEAST = 25_000
SAVE_SHARE = 8
MAX_DELTAS = 64


class PartitionIds:
    """A sorted set of int64 ids in two sorted arrays (large, recent)."""

    def __init__(self, ids: Ids) -> None:
        self.large: Ids = np.unique(ids)
        self.recent: Ids = np.empty(0, np.int64)

    def __len__(self) -> int:
        return len(self.large) + len(self.recent)

    def contains(self, ids: Ids) -> npt.NDArray[np.bool_]:
        return _in_sorted(self.large, ids) | _in_sorted(self.recent, ids)

    def sorted(self) -> Ids:
        return _merge(self.large, self.recent)

    def add(self, ids: Ids) -> None:
        new = np.unique(ids)
        new = new[~self.contains(new)]
        self.recent = _merge(self.recent, new)
        if len(self.recent) >= max(MERGE_AT_LEAST, len(self.large) // MERGE_SHARE):
            self.large = _merge(self.large, self.recent)
            self.recent = np.empty(0, np.int64)


def _merge(a: Ids, b: Ids) -> Ids:
    """Two sorted arrays with no id in common, as one sorted array.

    numpy's stable sort is a timsort for int64: it finds the two runs and merges them in linear
    time, where union1d would sort the whole array again (~1 s at 10M ids, dozens of times over a
    backlog).
    """
    merged = np.concatenate([a, b])
    merged.sort(kind="stable")  # in place: a merge holds two copies of the ids, not three
    return merged


def _in_sorted(sorted_ids: Ids, ids: Ids) -> npt.NDArray[np.bool_]:
    if not len(sorted_ids):
        return np.zeros(len(ids), np.bool_)
    at: npt.NDArray[np.intp] = np.searchsorted(sorted_ids, ids).clip(max=len(sorted_ids) - 1)
    return np.equal(sorted_ids[at], ids)  # what `==` calls; numpy types `==` as Any


class SeenIds:
    """Per partition: the ids loaded, and the ledger offset (next to load) they are complete to."""

    def __init__(self, topic: str, snapshots: IdSnapshots | None = None) -> None:
        self.topic, self.snapshots = topic, snapshots
        self.ids: dict[int, PartitionIds] = {}
        self.upto: dict[int, int | None] = {}
        self.saved: dict[int, int] = {}  # how many ids the newest saved copy holds
        self.deltas: dict[int, int] = {}  # deltas saved since that copy

    def missing(self, partitions: Iterable[int]) -> bool:
        """Whether any of `partitions` has no ids yet (the next sync reads all of its rows)."""
        return any(int(p) not in self.ids for p in partitions)

    def sync(
        self, con: duckdb.DuckDBPyConnection, partitions: Iterable[int], ledger: dict[int, int]
    ) -> int:
        """Bring `partitions` up to `ledger`, read in the same transaction as `con`'s snapshot.

        Returns how many fact rows it read."""
        wanted = sorted({int(p) for p in partitions})
        for p in wanted:
            # A saved copy of a partition's ids spares most of the read (id_snapshots.py).
            at = ledger.get(p)
            if p in self.ids or not self.snapshots or at is None:
                continue
            if (saved := self.snapshots.newest(p, at)) is not None:
                self.ids[p], self.upto[p] = PartitionIds(saved[0]), saved[1]
                self.saved[p], self.deltas[p] = len(self.ids[p]), saved[2]
        # Rows to read: all of a partition met for the first time, or those at and after our
        # offset where another loader committed since. Each query reads every fact file whose
        # offset statistics reach its lower bound, and a file holds rows of many partitions, so
        # one query for all of them: bounded below by the lowest offset needed, then each
        # partition keeps its own rows.
        needed = [p for p in wanted if p not in self.ids or self.upto[p] != ledger.get(p)]
        start = {p: self.upto.get(p) or 0 for p in needed}  # no offset yet: from the first row
        read = 0
        if needed:
            partition, offset, ids = self._read(con, needed, min(start.values()))
            read = len(ids)
            for p in needed:
                rows = (partition == p) & (offset >= start[p])
                if p in self.ids:
                    self.ids[p].add(ids[rows])
                else:
                    self.ids[p] = PartitionIds(ids[rows])
                # What was just read from the fact table is copied at the next save, so the
                # next restart does not read it again.
                self.deltas[p] = MAX_DELTAS
        for p in wanted:
            self.upto[p] = ledger.get(p)
        return read

    def _read(
        self, con: duckdb.DuckDBPyConnection, partitions: list[int], lowest: int
    ) -> tuple[npt.NDArray[np.int32], Ids, Ids]:
        """(partition, offset, transaction id) of the fact rows of `partitions` from `lowest`."""
        got = con.execute(
            "SELECT source_partition, source_offset, transaction_id FROM transaction_fact "
            "WHERE source_topic = ? AND source_partition IN (SELECT unnest(?)) "
            "AND source_offset >= ?",
            [self.topic, partitions, lowest],
        ).fetchnumpy()
        return (
            np.asarray(got["source_partition"], np.int32),
            np.asarray(got["source_offset"], np.int64),
            np.asarray(got["transaction_id"], np.int64),
        )

    def loaded(self, partitions: npt.NDArray[np.int32], ids: Ids) -> npt.NDArray[np.bool_]:
        """For each (partition, id) of a batch: is the id already in the fact table? (after sync)"""
        out = np.zeros(len(ids), np.bool_)
        for p in np.unique(partitions):
            rows = partitions == p
            out[rows] = self.ids[int(p)].contains(ids[rows])
        return out

    def committed(
        self,
        partitions: npt.NDArray[np.int32],
        ids: Ids,
        next_offsets: dict[int, int],
        since: dict[int, int],
    ) -> None:
        """A batch committed: each of its ids is now loaded; the ledger, which stood at `since`
        in the batch's transaction, stands at next_offsets."""
        for p, offset in next_offsets.items():
            if p not in self.ids:
                continue
            mine = ids[partitions == p]
            # The ids were complete to the transaction's ledger, so with the batch's they are
            # complete to the new one: a delta from one to the other.
            if self.snapshots and self.upto[p] == since.get(p):
                self.snapshots.save_delta(p, mine, since.get(p, 0), offset)
                self.deltas[p] = self.deltas.get(p, 0) + 1
            self.ids[p].add(mine)
            self.upto[p] = offset

    def flush(self) -> None:
        """Wait for the deltas of the commits so far to be saved (or to have failed)."""
        if self.snapshots:
            self.snapshots.flush()

    def save_grown(self) -> None:
        """Save the ids of each partition that grew enough since its last save (after a commit)."""
        for p, ids in self.ids.items():
            at, saved = self.upto[p], self.saved.get(p, 0)
            grown = len(ids) - saved >= max(SAVE_AT_LEAST, saved // SAVE_SHARE)
            if self.snapshots and at is not None and (grown or self.deltas.get(p, 0) >= MAX_DELTAS):
                self.snapshots.save(p, ids.sorted(), at)
                self.saved[p], self.deltas[p] = len(ids), 0

    def keep_only(self, partitions: Iterable[int]) -> None:
        """Forget partitions this loader no longer owns (they are read again if they return)."""
        keep = set(partitions)
        for p in [p for p in self.ids if p not in keep]:
            del self.ids[p], self.upto[p]
            self.saved.pop(p, None)
            self.deltas.pop(p, None)
