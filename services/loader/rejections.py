"""Validated records the loader cannot take, kept in the error zone beside the validator's.

Validation is meant to refuse whatever the warehouse cannot store, so these are rare: a frame no
registered schema decodes (another producer wrote to the validated topic), or a record a loading
step still fails on (headrace/poison.py isolates it). Each is written by the loader itself as a
one-line file, `error/date=<day it entered raw>/<topic>.pPPP.oOFFSET-OFFSET.loader.jsonl`, in the
envelope the stager writes for the validator's rejections (stage `loader`, reason UNPROCESSABLE,
the original Confluent frame in base64). The file is written before the warehouse transaction
that moves the ledger past its offset commits: a crash before COMMIT replays the batch, which
fails on the same record again and rewrites the same file under the same name.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson

from headrace import envelope
from headrace.envelope import Problem
from headrace.zone_files import day_folder, file_name

WRITER = "loader"


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
