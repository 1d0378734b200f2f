"""The project's own three-node cluster: one id, one quorum of three, remembered in the state."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from headrace.dev.infra import local_kafka
from headrace.dev.infra.kafka_cluster import KafkaCluster
from headrace.kafka import clients as kafka_clients


def test_three_nodes_form_one_cluster_with_a_quorum_of_three(kafka_cluster: KafkaCluster) -> None:
    metadata = kafka_clients.admin(kafka_cluster.bootstrap).list_topics(timeout=10)
    assert sorted(metadata.brokers) == [1, 2, 3]
    assert metadata.cluster_id == (kafka_cluster.home / "cluster.id").read_text().strip()
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in kafka_cluster.nodes)
    ports = set()
    for node in kafka_cluster.nodes:
        props = node.props.read_text()
        assert f"controller.quorum.voters={voters}" in props
        assert "offsets.topic.replication.factor=3" in props
        assert "transaction.state.log.min.isr=2" in props
        meta = (node.data_dir / "meta.properties").read_text()
        assert f"cluster.id={metadata.cluster_id}" in meta and f"node.id={node.node_id}" in meta
        assert node.pid_file.parent == node.home and node.home.parent == kafka_cluster.home
        ports |= {node.port, node.controller_port}
    assert len(ports) == 6


def test_the_state_folder_remembers_three_brokers(kafka_cluster: KafkaCluster) -> None:
    infra = kafka_cluster.infra
    assert local_kafka.remembered_brokers(infra) == 3
    current = local_kafka.current(infra)
    assert isinstance(current, KafkaCluster) and current.bootstrap == kafka_cluster.bootstrap
    status = current.status()
    assert status.count("running (pid") == 3, status


def headrace(cluster: KafkaCluster, *args: str) -> subprocess.CompletedProcess[str]:
    """The `headrace` command with the environment that points it at the session's cluster."""
    infra = cluster.infra
    env = {
        **os.environ,
        "HEADRACE_INFRA_STATE_DIR": str(infra.state_dir),
        "HEADRACE_INFRA_KAFKA_PORT": str(infra.kafka_port),
        "HEADRACE_INFRA_KAFKA_CONTROLLER_PORT": str(infra.kafka_controller_port),
        "HEADRACE_INFRA_KAFKA_METRICS_PORT": str(infra.kafka_metrics_port),
        "HEADRACE_INFRA_CACHE_DIR": str(infra.cache_dir),
        "HEADRACE_TOPIC_PREFIX": f"cli-{uuid.uuid4().hex[:8]}",
    }
    return subprocess.run(
        [sys.executable, "-m", "headrace", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_command_finds_the_running_cluster_and_refuses_another_layout(
    kafka_cluster: KafkaCluster,
) -> None:
    started = headrace(kafka_cluster, "infra", "start", "--brokers", "3")
    assert started.returncode == 0, started.stderr
    assert started.stdout.count("running (pid") == 3, started.stdout
    assert "replication factor 3, min.insync.replicas 2; created 4" in started.stdout

    status = headrace(kafka_cluster, "infra", "status")
    assert status.stdout.count("running (pid") == 3, status.stdout

    single = headrace(kafka_cluster, "infra", "start")
    assert single.returncode == 2
    assert single.stderr.strip().splitlines() == [
        "headrace: error: Kafka already runs here with 3 broker(s); "
        "stop it first (`headrace infra stop`)"
    ]
