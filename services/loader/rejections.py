"""Validated records the loader cannot take, kept in the error zone beside the validator's.

Validation is meant to refuse whatever the warehouse cannot store, so these are rare: a frame no
registered schema decodes (another producer wrote to the validated topic), or a record a loading
step still fails on (headrace/contract/poison.py isolates it). Each is written by the loader itself
as a one-line file, `error/date=<day it entered raw>/<topic>.pPPP.oOFFSET-OFFSET.loader.jsonl`, in
the envelope the stager writes for the validator's rejections (stage `loader`, reason UNPROCESSABLE,
the original Confluent frame in base64). The file is written before the warehouse transaction
that moves the ledger past its offset commits, so a crash can leave a file whose record the
ledger does not cover yet. Before the file, a marker naming it is written under
`state/loader-rejected/<topic>/pPPP/<offset>`; when the loader is assigned the partition, a
marker at or past the ledger means that transaction never committed, and its file is deleted
(the replayed batch isolates the record again, or loads it if it no longer fails); a marker below
the ledger is only removed. So each record ends in exactly one place, wherever a crash falls.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from headrace.contract import envelope
from headrace.contract.envelope import Problem
from headrace.lake.bucket import Bucket
from headrace.lake.zone_files import day_folder, file_name

WRITER = "loader"
MARKERS = "state/loader-rejected"
_MARKER_OFFSET = re.compile(r"/(\d+)$")


@dataclass(frozen=True)
class Rejected:
    """A validated record, where it was read, and why the loader could not take it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    frame: bytes
    problem: Problem

    @property
    def path(self) -> str:
        """Its error-zone file: one per record, named by its offset, so a redo overwrites it."""
        name = file_name(self.topic, self.partition, self.offset, self.offset, WRITER)
        return f"{day_folder('error', self.timestamp_ms or 0)}/{name}"

    def line(self) -> bytes:
        """The error-zone line, as the stager writes an envelope (the frame is binary: base64)."""
        env = envelope.build(
            [self.problem],
            WRITER,
            (self.topic, self.partition, self.offset),
            None,
            self.timestamp_ms,
        )
        del env["original"]
        env["rejected_at"] = env["rejected_at"].isoformat()
        env["original_base64"] = base64.b64encode(self.frame).decode("ascii")
        return orjson.dumps(env, option=orjson.OPT_APPEND_NEWLINE)


def keep(bucket: Bucket, rejected: Sequence[Rejected]) -> None:
    """Write each record's error-zone file, its marker first (see the module's docstring)."""
    for r in rejected:
        bucket.write_atomic(_marker(r.topic, r.partition, r.offset), r.path.encode())
        bucket.write_atomic(r.path, r.line())


def settle(bucket: Bucket, topic: str, partition: int, next_offset: int) -> int:
    """Resolve `partition`'s markers against the ledger's next offset; return the files deleted."""
    deleted = 0
    for url in bucket.glob(f"{MARKERS}/{topic}/p{partition:03d}/*"):
        found = _MARKER_OFFSET.search(url)
        if found is None:
            continue
        if int(found.group(1)) >= next_offset:  # its transaction never committed
            bucket.delete(bucket.url(bucket.read_bytes(url).decode()))
            deleted += 1
        bucket.delete(url)
    return deleted


def done(bucket: Bucket, rejected: Sequence[Rejected]) -> None:
    """Remove the markers of records whose transaction committed (best effort: `settle` would)."""
    for r in rejected:
        bucket.delete(bucket.url(_marker(r.topic, r.partition, r.offset)))


def _marker(topic: str, partition: int, offset: int) -> str:
    return f"{MARKERS}/{topic}/p{partition:03d}/{offset}"
