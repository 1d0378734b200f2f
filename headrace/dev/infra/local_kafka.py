"""Which local Kafka a state folder runs: one broker, or a cluster of N nodes.

The number of brokers is remembered in `<state>/kafka.brokers` while they run, so `infra stop`,
`infra status`, `headrace topics` and the tests address the layout that was started without
being told again.
"""

from __future__ import annotations

from pathlib import Path

from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.kafka_broker import KafkaBroker
from headrace.dev.infra.kafka_cluster import KafkaCluster
from headrace.runtime.errors import OperatorError

LocalKafka = KafkaBroker | KafkaCluster


def brokers_file(infra: InfraSettings) -> Path:
    return infra.state_dir.resolve() / "kafka.brokers"


def remembered_brokers(infra: InfraSettings) -> int:
    """Brokers of the infra started from this state folder (1 when none is remembered)."""
    try:
        return max(1, int(brokers_file(infra).read_text().strip()))
    except (FileNotFoundError, ValueError):
        return 1


def layout(infra: InfraSettings, brokers: int) -> LocalKafka:
    return KafkaBroker(infra) if brokers == 1 else KafkaCluster(infra, brokers)


def current(infra: InfraSettings) -> LocalKafka:
    """The layout started last from this state folder."""
    return layout(infra, remembered_brokers(infra))


def start(infra: InfraSettings, brokers: int) -> LocalKafka:
    """Start `brokers` brokers (1: a single broker), unless another layout runs here."""
    if brokers < 1:
        raise OperatorError(f"--brokers {brokers}: give 1 (a single broker) or more")
    running = current(infra)
    if remembered_brokers(infra) != brokers and any(n.pid() for n in running.nodes):
        raise OperatorError(
            f"Kafka already runs here with {len(running.nodes)} broker(s); "
            "stop it first (`headrace infra stop`)"
        )
    kafka = layout(infra, brokers)
    # Remembered before the start, so `infra stop` also stops nodes of a start that failed.
    infra.state_dir.mkdir(parents=True, exist_ok=True)
    brokers_file(infra).write_text(f"{brokers}\n")
    kafka.start()
    return kafka


def stop(infra: InfraSettings) -> LocalKafka:
    """Stop the remembered layout, and forget it."""
    kafka = current(infra)
    kafka.stop()
    brokers_file(infra).unlink(missing_ok=True)
    return kafka
