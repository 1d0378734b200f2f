"""How far behind each stage of the pipeline is, from what each stage made durable.

stager and validator: their consumer groups' committed offsets (both commit only after their
writes are durable). loader: the offsets ledger in the warehouse (its Kafka commit only follows
it). summarizer: load batches not summarized yet (it refreshes from the warehouse, and catches up
on batches whose announcement it never read). All zero: every event that entered raw is placed
and summarized, which is what the fault suite's liveness check I7 waits for.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from headrace.kafka import clients as kafka_clients
from headrace.kafka import group_lag, offsets
from headrace.kafka.offsets import Key
from headrace.kafka.topics import Topics
from headrace.lake import bookkeeping
from headrace.runtime.registry import LOADER, STAGER, VALIDATOR


@dataclass(frozen=True)
class Groups:
    stager: str = STAGER.group
    validator: str = VALIDATOR.group
    loader: str = LOADER.group


@dataclass(frozen=True)
class StageLag:
    stage: str
    pending: int  # events (summarizer: load batches)
    unit: str = "events"


def stage_lags(
    con: duckdb.DuckDBPyConnection, bootstrap: str, topics: Topics, groups: Groups = Groups()
) -> list[StageLag]:
    """Pending work per stage; `con` is a warehouse connection (read-only is enough)."""
    admin = kafka_clients.admin(bootstrap)
    ledger = bookkeeping.ledger_offsets(con, groups.loader, topics.validated)
    partitions = offsets.partitions(admin, topics.validated)
    loader: dict[Key, int] = {(topics.validated, p): ledger.get(p, -1) for p in partitions}
    return [
        StageLag(
            "stager",
            _total(group_lag.group_pending(bootstrap, groups.stager, [topics.raw, topics.error])),
        ),
        StageLag(
            "validator", _total(group_lag.group_pending(bootstrap, groups.validator, [topics.raw]))
        ),
        StageLag("loader", _total(group_lag.pending(bootstrap, loader))),
        StageLag("summarizer", bookkeeping.unsummarized_count(con), "load batches"),
    ]


def _total(lags: dict[Key, int]) -> int:
    return sum(lags.values())
