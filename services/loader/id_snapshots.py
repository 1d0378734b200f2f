"""Saved copies of a partition's loaded transaction ids, so a restarted loader reads few fact files.

A loader meeting a partition needs every id loaded in it (services/loader/seen_ids.py). Read
from `transaction_fact`, that is a scan of every fact file, since each batch's file holds rows of
several partitions: over a minute at ~1,100 files on the GCS emulator, during which a restarted
loader commits nothing. So after its commits a loader now and then saves a partition's ids to the
bucket, `state/loader-ids/<topic>/p<partition>/<next offset>.npy`, and a loader meeting the
partition loads the newest copy and reads only the fact rows at or after its offset (the files'
offset statistics skip the older files).

A copy holds exactly the ids of the partition's fact rows before its offset: it is written from
a loader's ids after the commit that brought them up to that offset, and committed rows never go
away. So any copy at or below the ledger is right, whoever wrote it, and a copy that is missing,
unreadable or being deleted only costs the full read. Saving is best effort for the same reason.
"""

from __future__ import annotations

import io
import logging
import re

import numpy as np

from headrace.lake.bucket import Bucket
from services.loader.seen_ids import Ids

log = logging.getLogger(__name__)

PREFIX = "state/loader-ids"
KEEP = 2  # the newest copies per partition; older ones are deleted after each save
_OFFSET = re.compile(r"/(\d+)\.npy$")


class IdSnapshots:
    def __init__(self, bucket: Bucket, topic: str) -> None:
        self.bucket, self.topic = bucket, topic

    def newest(self, partition: int, at_most: int) -> tuple[Ids, int] | None:
        """The newest saved ids of `partition` with an offset <= at_most, and that offset."""
        try:
            for url, offset in reversed(self._saved(partition)):
                if offset <= at_most:
                    data = self.bucket.read_bytes(url)
                    return np.load(io.BytesIO(data), allow_pickle=False), offset
        # Any failure (a bucket error of gcsfs, aiohttp or the OS, a damaged file) costs only the
        # full read, so none may stop the loader.
        except Exception as exc:
            log.warning("saved ids of partition %d unreadable (%s); reading them", partition, exc)
        return None

    def save(self, partition: int, ids: Ids, next_offset: int) -> None:
        buffer = io.BytesIO()
        np.save(buffer, ids, allow_pickle=False)
        try:
            self.bucket.write_atomic(self._relative(partition, next_offset), buffer.getvalue())
            for url, _ in self._saved(partition)[:-KEEP]:
                self.bucket.delete(url)
        except Exception as exc:  # the batch is committed already; a restart just reads more
            log.warning("ids of partition %d not saved (%s); a restart reads more", partition, exc)

    def _relative(self, partition: int, offset: int) -> str:
        return f"{PREFIX}/{self.topic}/p{partition}/{offset:020d}.npy"

    def _saved(self, partition: int) -> list[tuple[str, int]]:
        """(url, offset) of the saved copies, oldest first."""
        found = self.bucket.glob(f"{PREFIX}/{self.topic}/p{partition}/*.npy")
        saved = [(url, int(m.group(1))) for url in found if (m := _OFFSET.search(url))]
        return sorted(saved, key=lambda saved: saved[1])
