"""The broker's Prometheus metrics: the JMX exporter agent on the session's real broker.

The alert rules read three of its series (deploy/prometheus/alerts.yml); their names come from the
MBeans Kafka 4.x registers in KRaft mode and the rules in infra/kafka/kafka-metrics.yml, so a
renamed MBean or a broken rule shows here as a missing series.
"""

from __future__ import annotations

import time
import urllib.request
import uuid

from prometheus_client.parser import text_string_to_metric_families

from headrace.dev.infra import kafka_metrics
from headrace.dev.infra.config import InfraSettings
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import ensure_topics
from headrace.runtime.paths import KAFKA_METRICS_RULES

ALERTED = (
    "kafka_server_replicamanager_underreplicatedpartitions",
    "kafka_controller_kafkacontroller_offlinepartitionscount",
    "kafka_controller_kafkacontroller_activecontrollercount",
)


def scrape(target: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{target}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def test_the_agent_serves_partition_and_controller_health(
    broker_metrics: str, bootstrap: str
) -> None:
    before = scrape(broker_metrics)
    for name in ALERTED:
        assert name in before, f"the broker does not export {name}"
    assert before["kafka_controller_kafkacontroller_activecontrollercount"] == 1
    assert before["kafka_controller_kafkacontroller_offlinepartitionscount"] == 0
    assert before["kafka_server_replicamanager_underreplicatedpartitions"] == 0

    # The gauges follow the broker: three new partitions, each led by this broker.
    ensure_topics(kafka_clients.admin(bootstrap), {f"metrics-{uuid.uuid4().hex[:8]}": 3})
    partitions = "kafka_server_replicamanager_partitioncount"
    deadline = time.monotonic() + 30
    while (after := scrape(broker_metrics))[partitions] < before[partitions] + 3:
        assert time.monotonic() < deadline, f"{partitions} stayed at {after[partitions]}"
        time.sleep(0.5)
    assert after["kafka_server_replicamanager_leadercount"] >= before[partitions] + 3
    assert after["kafka_server_replicamanager_underreplicatedpartitions"] == 0


def test_each_node_of_a_cluster_gets_its_own_metrics_port() -> None:
    infra = InfraSettings(kafka_metrics_port=30_004)
    assert [kafka_metrics.metrics_port(infra, n) for n in (1, 2, 3)] == [30_004, 30_014, 30_024]
    option = kafka_metrics.agent_option(infra, node=2)
    jar, _, arguments = option.removeprefix("-javaagent:").partition("=")
    assert jar.endswith(f"jmx_prometheus_javaagent-{kafka_metrics.agent_version()}.jar")
    assert arguments == f"127.0.0.1:30014:{KAFKA_METRICS_RULES}"
