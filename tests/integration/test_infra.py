"""The project's own broker script: idempotent start, stop by PID, data kept across restarts."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from headrace.dev.infra import processes
from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.kafka_broker import KafkaBroker
from headrace.dev.infra.ports import free_port_block
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import ensure_topics


def test_broker_restart_keeps_topics_and_messages(tmp_path: Path) -> None:
    port = free_port_block(3)
    infra = InfraSettings(
        state_dir=tmp_path,
        kafka_port=port,
        kafka_controller_port=port + 1,
        kafka_metrics_port=port + 2,
        kafka_heap="384m",
    )
    broker = KafkaBroker(infra)
    try:
        pid = broker.start()
        assert broker.start() == pid  # a second start finds the running broker
        assert f"running (pid {pid})" in broker.status()
        ensure_topics(kafka_clients.admin(infra.bootstrap), {"kept": 2})
        producer = kafka_clients.producer(infra.bootstrap)
        for i in range(100):
            producer.produce("kept", str(i).encode(), partition=i % 2)
        assert producer.flush(30) == 0

        assert broker.stop()
        assert processes.read_pid(broker.pid_file) is None
        assert "stopped" in broker.status()
        broker.start()

        consumer: Consumer = kafka_clients.consumer(infra.bootstrap, "restart-check")
        try:
            total = sum(
                consumer.get_watermark_offsets(TopicPartition("kept", p), timeout=20)[1]
                for p in (0, 1)
            )
        finally:
            consumer.close()
        assert total == 100
    finally:
        broker.stop()
    assert processes.read_pid(broker.pid_file) is None


def test_storage_formats_with_a_cluster_id_that_starts_with_a_dash(tmp_path: Path) -> None:
    # One random id in 64 starts with "-" (URL-safe base64); kafka-storage's argparse once read
    # it as an option and refused to format.
    port = free_port_block(3)
    infra = InfraSettings(
        state_dir=tmp_path,
        kafka_port=port,
        kafka_controller_port=port + 1,
        kafka_metrics_port=port + 2,
    )
    broker = KafkaBroker(infra)
    broker.fetch()
    broker.home.mkdir(parents=True, exist_ok=True)
    dashed = base64.urlsafe_b64encode(b"\xf8" + uuid.uuid4().bytes[1:]).decode()[:22]
    assert dashed.startswith("-")
    (broker.home / "cluster.id").write_text(dashed)
    broker.configure()
    meta = (broker.home / "data" / "meta.properties").read_text()
    assert f"cluster.id={dashed}" in meta
