"""The validator's Kafka side: consume raw; produce validated + error; commit; one transaction.

A batch's records and its consumed offsets commit together (send_offsets_to_transaction), so a
crash at any point either publishes the whole batch once or nothing. An abortable error rewinds the
consumer to the batch's first offsets and the batch is redone; a fatal one (for example being fenced
by a newer instance with the same transactional id) ends the process with a non-zero exit.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import cast

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from headrace.codec.registry import Registry, registry_for
from headrace.contract import envelope, poison
from headrace.contract.rules import Contract, ContractWatcher
from headrace.contract.validator import Validator
from headrace.kafka import clients as kafka_clients
from headrace.kafka import lag_metrics, stuck_calls
from headrace.kafka.consumer_loop import (
    BatchPolicy,
    ConsumerLoop,
    StopFlag,
    committed_offsets,
    position,
    rewind,
)
from headrace.kafka.topics import ERROR_MESSAGE_MAX_BYTES, Topics
from headrace.runtime import metrics
from headrace.runtime.crash_points import crash_point
from headrace.runtime.http import Heartbeat
from headrace.runtime.registry import VALIDATOR
from headrace.runtime.settings import CommonSettings
from headrace.serving.service import run_consumer_service
from services.validator.config import ValidatorSettings

log = logging.getLogger(__name__)
SERVICE = VALIDATOR.name
# Transaction calls wait at most this long (seconds): the default is forever, and a broker that
# came back without our coordinator state must not hang the process (the watchdog also guards).
TXN_TIMEOUT = 30.0
# Sending offsets takes milliseconds on a healthy cluster. A call still blocked after the margin
# past its timeout is stuck in librdkafka (headrace/kafka/stuck_calls.py).
SEND_OFFSETS_TIMEOUT = 10.0
STUCK_MARGIN = 5.0


def commit_transaction(producer: Producer, attempts: int = 5) -> None:
    """Commit, calling again on a retriable error as librdkafka asks (a timeout, say)."""
    for attempt in range(attempts):
        try:
            producer.commit_transaction(TXN_TIMEOUT)
            return
        except KafkaException as exc:
            if not exc.args[0].retriable() or attempt == attempts - 1:
                raise


def _show_contract(contract: Contract, live: int) -> None:
    metrics.CONTRACT_INFO.labels(SERVICE, contract.event, contract.schema_file).set(live)


class ValidatorHandler:
    def __init__(
        self, producer: Producer, topics: Topics, contracts: ContractWatcher, registry: Registry
    ) -> None:
        self.producer = producer
        self.topics = topics
        self.contracts = contracts
        self.registry = registry
        self.validator = Validator(contracts.current(), registry)
        _show_contract(self.validator.contract, 1)

    def _current_validator(self) -> Validator:
        """The validator of the current contract: a changed contract applies from the next batch."""
        contract = self.contracts.current()
        if contract is not self.validator.contract:
            _show_contract(self.validator.contract, 0)
            self.validator = Validator(contract, self.registry)
            _show_contract(contract, 1)
        return self.validator

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start at the committed offsets (committed inside each transaction)."""

    def handle(self, consumer: Consumer, messages: list[Message]) -> None:
        """One transaction; on an abortable error, abort and rewind so the batch is consumed again.

        Fatal errors (for example a newer instance with our transactional id fenced us) raise:
        the process exits non-zero and its supervisor restarts it.
        """
        with metrics.BATCH_SECONDS.labels(SERVICE).time():
            try:
                self._transact(consumer, messages)
            except KafkaException as exc:
                err = exc.args[0]
                if err.fatal() or not err.txn_requires_abort():
                    raise
                log.warning("transaction aborted (%s); the batch will be consumed again", err)
                metrics.BATCH_RETRIES.labels(SERVICE).inc()
                self.producer.abort_transaction(TXN_TIMEOUT)
                rewind(consumer, messages)

    def _transact(self, consumer: Consumer, messages: list[Message]) -> None:
        validator = self._current_validator()
        outcome = validator.validate([m.value() for m in messages], datetime.now(UTC))
        encoded = validator.encode(outcome, self.registry.id_of(validator.contract.schema_file))
        self.producer.begin_transaction()
        produce, validated = self.producer.produce, self.topics.validated
        for i, frame in zip(encoded.rows, encoded.frames, strict=True):
            m = messages[i]
            # Key, partition and raw's arrival time (reconciliation by day) travel on; raw's
            # headers do not: they stay in the raw zone (joined by transaction_id), and copying
            # them cost about 5 of the ~30 us this loop spends per event (docs/performance.md).
            produce(
                validated,
                frame,
                m.key(),
                partition=cast(int, m.partition()),  # a consumed message has one
                timestamp=m.timestamp()[1],
            )
        for i, problems in encoded.rejected:
            m = messages[i]
            env = envelope.build(
                problems,
                SERVICE,
                position(m),
                m.value(),
                m.timestamp()[1],
            )
            self.producer.produce(
                self.topics.error, self.registry.encode(envelope.ENVELOPE_SCHEMA, env), m.key()
            )
        crash_point("validator.mid_transaction")
        offsets, group = committed_offsets(messages), consumer.consumer_group_metadata()
        stuck_calls.within(
            SEND_OFFSETS_TIMEOUT + STUCK_MARGIN,
            "send_offsets_to_transaction",
            lambda: self.producer.send_offsets_to_transaction(offsets, group, SEND_OFFSETS_TIMEOUT),
        )
        crash_point("validator.before_commit")
        with metrics.COMMIT_SECONDS.labels(SERVICE).time():
            commit_transaction(self.producer)
        crash_point("validator.after_commit")
        metrics.EVENTS_IN.labels(SERVICE, self.topics.raw).inc(len(messages))
        metrics.EVENTS_OUT.labels(SERVICE, self.topics.validated).inc(len(encoded.rows))
        metrics.EVENTS_OUT.labels(SERVICE, self.topics.error).inc(len(encoded.rejected))
        # Counted only once the transaction committed: an aborted batch is consumed again.
        for reason, n in Counter(problems[0].reason for _, problems in encoded.rejected).items():
            metrics.EVENTS_REJECTED.labels(SERVICE, reason).inc(n)
        metrics.ISOLATED_RECORDS.labels(SERVICE).inc(
            sum(problems[0].reason == poison.REASON for _, problems in encoded.rejected)
        )
        metrics.LAST_PROGRESS.labels(SERVICE).set_to_current_time()


def build(
    common: CommonSettings, own: ValidatorSettings, stop: StopFlag, hb: Heartbeat
) -> ConsumerLoop:
    topics = Topics(common.topic_prefix)
    consumer = kafka_clients.service_consumer(common, own)
    producer = kafka_clients.transactional_producer(
        common.bootstrap_servers,
        f"{own.group_id}-{common.instance_id}",
        # An envelope is larger than the raw message it carries (topics.ERROR_MESSAGE_MAX_BYTES).
        **{"message.max.bytes": ERROR_MESSAGE_MAX_BYTES + 64 * 1024},
    )
    contracts = ContractWatcher(common.schemas_dir)
    handler = ValidatorHandler(producer, topics, contracts, registry_for(common))
    policy = BatchPolicy.of(own, common)
    loop = ConsumerLoop(consumer, [topics.raw], handler, policy, hb, stop)
    return lag_metrics.watch(SERVICE, loop)


def main() -> None:
    """`headrace run validator`: the validator's consumer loop with health and metrics."""
    run_consumer_service(SERVICE, ValidatorSettings, build)
