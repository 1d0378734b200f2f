"""Saved copies of a partition's loaded transaction ids, so a restarted loader reads no fact file.

A loader meeting a partition needs every id loaded in it (services/loader/seen_ids.py). Read
from `transaction_fact`, that is a scan of every fact file, since each batch's file holds rows of
several partitions: over a minute at ~1,100 files on the GCS emulator, during which a restarted
loader commits nothing. So loaders keep the ids in the bucket, under
`state/loader-ids/<topic>/p<partition>/`, in two kinds of files:

- a copy, `<next offset>.npy`: every id of the partition's fact rows before that offset, saved
  now and then (seen_ids.py decides when);
- a delta, `<from>-<to>.delta.npy`: the ids of the rows one commit added, which moved the
  partition's ledger from `from` to `to`, saved after every commit.

A loader meeting the partition loads the newest copy at or below the ledger and the chain of
deltas that continues it, and reads from the fact table only the rows past the chain's end: none
after a clean stop, one batch's after a kill between a commit and its delta. So how long a restart
takes to commit does not grow with the warehouse (docs/guarantees.md states the bound).

Each file is exact by construction: it is written from a loader's ids after the commit that
brought them up to its offset, committed rows never go away, and the ledger moves from `from` only
once (the loaders' commits are fenced). So any copy or delta at or below the ledger is right,
whoever wrote it, and one that is missing, unreadable or being deleted only costs a longer read.
Saving is best effort for the same reason.
"""

from __future__ import annotations

import io
import logging
import re
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np

from headrace.lake.bucket import Bucket
from services.loader.seen_ids import Ids

log = logging.getLogger(__name__)

PREFIX = "state/loader-ids"
KEEP = 2  # the newest copies per partition; older ones, and the deltas they cover, are deleted
_COPY = re.compile(r"/(\d+)\.npy$")
_DELTA = re.compile(r"/(\d+)-(\d+)\.delta\.npy$")
# Deltas and the files of a chain are small: written and read several at a time, as a bucket
# request costs tens of milliseconds whatever its size.
READERS = 8


class IdSnapshots:
    def __init__(self, bucket: Bucket, topic: str) -> None:
        self.bucket, self.topic = bucket, topic
        # A commit's deltas (one per partition) are written in parallel; a lost one only
        # lengthens a restart's read.
        self._writer = ThreadPoolExecutor(READERS, thread_name_prefix="id-deltas")
        self._pending: list[Future[None]] = []

    def newest(self, partition: int, at_most: int) -> tuple[Ids, int, int] | None:
        """The partition's ids as far as the saved files reach without passing `at_most`: the ids,
        the offset they are complete to, and how many deltas that took; None if nothing fits."""
        try:
            copies, deltas = self._saved(partition)
            # A copy that turns out unreadable falls back to the one before it.
            for url, offset in [*reversed([c for c in copies if c[1] <= at_most]), ("", 0)]:
                chain, end = self._chain(deltas, offset, at_most)
                if not url and not chain:
                    return None
                try:
                    parts = self._read([url, *chain] if url else chain)
                except Exception as exc:  # a damaged file, a bucket error: try the copy before
                    log.warning("saved ids of partition %d unreadable (%s)", partition, exc)
                    continue
                return np.concatenate(parts), end, len(chain)
        # Any failure (a bucket error of gcsfs, aiohttp or the OS) costs only the full read, so
        # none may stop the loader.
        except Exception as exc:
            log.warning("saved ids of partition %d unreadable (%s); reading them", partition, exc)
        return None

    def save(self, partition: int, ids: Ids, next_offset: int) -> None:
        """A copy of all the partition's ids before `next_offset`; older files are then deleted."""
        try:
            self.bucket.write_atomic(self._relative(partition, f"{next_offset:020d}"), _npy(ids))
            copies, deltas = self._saved(partition)
            if copies:
                kept_from = copies[-KEEP:][0][1]
                covered = [u for u, _, end in deltas if end <= kept_from]
                for url in [u for u, _ in copies[:-KEEP]] + covered:
                    self.bucket.delete(url)
        except Exception as exc:  # the batch is committed already; a restart just reads more
            log.warning("ids of partition %d not saved (%s); a restart reads more", partition, exc)

    def save_delta(self, partition: int, ids: Ids, start: int, end: int) -> None:
        """The ids one commit added, which moved the partition's ledger from `start` to `end`."""
        relative = self._relative(partition, f"{start:020d}-{end:020d}.delta")
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._writer.submit(self._write_delta, partition, relative, _npy(ids)))

    def flush(self) -> None:
        """Wait for the deltas submitted so far."""
        wait(self._pending)
        self._pending = []

    def _write_delta(self, partition: int, relative: str, data: bytes) -> None:
        try:
            self.bucket.write_atomic(relative, data)
        except Exception as exc:
            log.warning("ids delta of partition %d not saved (%s)", partition, exc)

    def _chain(
        self, deltas: list[tuple[str, int, int]], start: int, at_most: int
    ) -> tuple[list[str], int]:
        """The deltas that continue from `start` without passing `at_most`, and where they end."""
        by_start = {begin: (url, end) for url, begin, end in deltas if end <= at_most}
        chain, at = [], start
        while at in by_start:
            url, at = by_start.pop(at)
            chain.append(url)
        return chain, at

    def _read(self, urls: list[str]) -> list[Ids]:
        with ThreadPoolExecutor(min(READERS, len(urls))) as pool:
            data = list(pool.map(self.bucket.read_bytes, urls))
        return [np.load(io.BytesIO(d), allow_pickle=False) for d in data]

    def _relative(self, partition: int, name: str) -> str:
        return f"{PREFIX}/{self.topic}/p{partition}/{name}.npy"

    def _saved(self, partition: int) -> tuple[list[tuple[str, int]], list[tuple[str, int, int]]]:
        """The copies (url, offset), oldest first, and the deltas (url, from, to)."""
        found = self.bucket.glob(f"{PREFIX}/{self.topic}/p{partition}/*.npy")
        copies = sorted(
            ((url, int(m.group(1))) for url in found if (m := _COPY.search(url))),
            key=lambda copy: copy[1],
        )
        deltas = [
            (url, int(m.group(1)), int(m.group(2))) for url in found if (m := _DELTA.search(url))
        ]
        return copies, deltas


def _npy(ids: Ids) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, ids, allow_pickle=False)
    return buffer.getvalue()
