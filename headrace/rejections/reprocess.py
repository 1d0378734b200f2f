"""`headrace reprocess`: validate chosen error records again under the current contract and
publish the ones that now pass back to raw, each exactly once however often it runs.

The original bytes are republished unchanged, keyed by the transaction_id (so every copy of a
transaction reaches the same partition and loader), with the original message's headers as the
raw zone kept them and `headrace.reprocess_of: <topic>/<partition>/<offset>` naming the original.
The validator then treats the copy like any event, with the contract it has reloaded.

Exactly once in the fact table:
  1. an original with a live copy is skipped: a copy the ledger records or that raw carries (by
     its header), unless the validator rejected that copy again;
  2. the ledger (headrace.rejections.ledger) is written per chunk right after the broker has
     acknowledged the chunk, so a second run sees what the first published;
  3. a run that dies between the acknowledgements and its ledger write may publish a copy again
     once; the loader's first-copy-wins rule then records it in transaction_duplicate.
An event that still fails keeps its one error record: the attempt goes to the ledger as history.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson
from confluent_kafka import KafkaError, Message

from headrace.codec import original_bytes
from headrace.codec.registry import registry_for
from headrace.contract.rules import ContractError, load_contract
from headrace.contract.validator import Validator
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics
from headrace.lake import warehouse
from headrace.lake.bucket import Bucket
from headrace.rejections import ledger as reprocess_ledger
from headrace.rejections import select as rejections
from headrace.rejections.select import REPROCESS_OF, Selection
from headrace.runtime.errors import OperatorError
from headrace.runtime.settings import CommonSettings

CHUNK = 5_000  # events validated, published, acknowledged and written to the ledger together

CANDIDATES = """
SELECT source_topic, source_partition, source_offset, reason, original, original_base64, headers
FROM selected
WHERE kind = 'error' AND source_topic IS NOT NULL AND NOT live_copy
ORDER BY source_topic, source_partition, source_offset
"""
SKIPPED = """
SELECT reason, count(*) FILTER (WHERE kind = 'error' AND live_copy) AS reprocessed,
       count(*) FILTER (WHERE kind = 'duplicate') AS duplicates
FROM selected GROUP BY ALL
"""


@dataclass
class Summary:
    run_id: str
    contract: str
    republished: Counter[str] = field(default_factory=Counter)
    still_failing: Counter[tuple[str, str]] = field(default_factory=Counter)  # (was, is now)
    publish_failed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # already reprocessed
    duplicates: int = 0  # DUPLICATE rejections: placed already, nothing to reprocess

    def reasons(self) -> list[str]:
        seen = set(self.republished) | set(self.publish_failed) | set(self.skipped)
        return sorted(seen | {was for was, _ in self.still_failing})


@dataclass(frozen=True)
class Candidate:
    position: tuple[str, int, int]
    reason: str
    value: bytes | None
    headers: list[tuple[str, bytes]]


Progress = Callable[[int, int], None]  # (done, total)


def run(
    common: CommonSettings,
    selection: Selection,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> Summary:
    bucket = Bucket.open(common.bucket_url, common.gcs_endpoint)
    try:
        contract = load_contract(directory=common.schemas_dir)
    except ContractError as exc:
        raise OperatorError(f"the current contract does not load: {exc}") from None
    validator = Validator(contract, registry_for(common))
    now = datetime.now(UTC)
    summary = Summary(reprocess_ledger.new_run_id(now), contract.schema_file)
    con = warehouse.connect(common, read_only=True)
    try:
        rejections.load(con, bucket, selection)
        candidates = _candidates(con)
        _count_skipped(con, summary)
    finally:
        con.close()
    raw_topic = Topics(common.topic_prefix).raw
    producer = None if dry_run else kafka_clients.producer(common.bootstrap_servers)
    for n, start in enumerate(range(0, len(candidates), CHUNK)):
        chunk = candidates[start : start + CHUNK]
        outcome = validator.validate([c.value for c in chunk], datetime.now(UTC))
        attempts = [_attempt(summary, chunk[i], problems) for i, problems in outcome.rejected]
        passed = [(chunk[i], record) for i, record in outcome.valid]
        if producer is not None:
            attempts += _publish(producer, raw_topic, passed, summary)
            reprocess_ledger.write(bucket, summary.run_id, n, attempts)
        else:
            summary.republished.update(c.reason for c, _ in passed)
        if progress:
            progress(start + len(chunk), len(candidates))
    return summary


def _candidates(con: duckdb.DuckDBPyConnection) -> list[Candidate]:
    table = con.execute(CANDIDATES).arrow().read_all()
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    return [
        Candidate(
            (topic, partition, offset),
            reason,
            original_bytes.exact(text, text_base64),
            [(k, str(v).encode()) for k, v in (orjson.loads(headers) if headers else {}).items()],
        )
        for topic, partition, offset, reason, text, text_base64, headers in zip(
            *(columns[c] for c in table.column_names), strict=True
        )
    ]


def _count_skipped(con: duckdb.DuckDBPyConnection, summary: Summary) -> None:
    for reason, reprocessed, duplicates in con.execute(SKIPPED).fetchall():
        if reprocessed:
            summary.skipped[reason] += int(reprocessed)
        summary.duplicates += int(duplicates)


def _base(summary: Summary, c: Candidate) -> dict[str, Any]:
    topic, partition, offset = c.position
    return {
        "run_id": summary.run_id,
        "attempted_at": datetime.now(UTC).isoformat(),
        "contract": summary.contract,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
        "reason": c.reason,
    }


def _attempt(summary: Summary, c: Candidate, problems: list[Any]) -> dict[str, Any]:
    now_reason = problems[0].reason
    summary.still_failing[(c.reason, now_reason)] += 1
    return {
        **_base(summary, c),
        "outcome": reprocess_ledger.STILL_FAILING,
        "problems": [p.reason for p in problems],
    }


def _publish(
    producer: Any, topic: str, passed: list[tuple[Candidate, dict[str, Any]]], summary: Summary
) -> list[dict[str, Any]]:
    """Produce the chunk and wait for every acknowledgement; one ledger line per event."""
    results: dict[int, Message | KafkaError] = {}

    def on_delivery(i: int) -> Callable[[KafkaError | None, Message], None]:
        return lambda err, msg: results.__setitem__(i, err if err is not None else msg)

    for i, (c, record) in enumerate(passed):
        headers = [(k, v) for k, v in c.headers if k != REPROCESS_OF]
        headers.append((REPROCESS_OF, "/".join(map(str, c.position)).encode()))
        producer.produce(
            topic,
            c.value,
            str(record["transaction_id"]).encode(),
            headers=headers,
            on_delivery=on_delivery(i),
        )
        producer.poll(0)
    # Every message gets a report: delivered, or failed after message.timeout.ms.
    while len(results) < len(passed):
        producer.flush(1.0)
    lines = []
    for i, (c, record) in enumerate(passed):
        result = results[i]
        if isinstance(result, KafkaError):
            summary.publish_failed[c.reason] += 1
            lines.append(
                {**_base(summary, c), "outcome": reprocess_ledger.PUBLISH_FAILED, "problems": []}
            )
            continue
        summary.republished[c.reason] += 1
        lines.append(
            {
                **_base(summary, c),
                "outcome": reprocess_ledger.REPUBLISHED,
                "transaction_id": record["transaction_id"],
                "republished_topic": result.topic(),
                "republished_partition": result.partition(),
                "republished_offset": result.offset(),
            }
        )
    return lines
