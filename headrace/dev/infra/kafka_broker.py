"""A real Apache Kafka 4.x broker (KRaft, combined broker + controller) run with the machine's Java.

One node, a quorum of itself (`--standalone`). Data, logs and the PID file live in the state
folder, so a restart keeps every topic. `kafka_cluster.py` runs several such nodes. The broker
serves Prometheus metrics on `kafka_metrics_port` (headrace/dev/infra/kafka_metrics.py).
"""

from __future__ import annotations

from pathlib import Path

from headrace.dev.infra import kafka_metrics, kafka_node, processes
from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.kafka_dist import KafkaDistribution, new_cluster_id
from headrace.dev.infra.kafka_node import KafkaNode
from headrace.kafka.topics import auto_replication

# A broker cut off from the network takes ~30 s of controlled shutdown before it gives up.
STOP_GRACE_SECONDS = 30.0


class KafkaBroker:
    def __init__(self, infra: InfraSettings) -> None:
        self.infra = infra
        self.dist = KafkaDistribution(infra.cache_dir)
        self.version = self.dist.version
        self.home = infra.state_dir.resolve() / "kafka"
        self.node = KafkaNode(1, infra.kafka_port, infra.kafka_controller_port, self.home)
        self.pid_file = self.node.pid_file
        self.log_file = self.node.log_file

    @property
    def bootstrap(self) -> str:
        return self.node.address

    @property
    def nodes(self) -> tuple[KafkaNode, ...]:
        return (self.node,)

    def fetch(self) -> Path:
        """Resolve the broker's jars into the cache (once)."""
        return self.dist.fetch()

    def configure(self) -> Path:
        """Write the broker's configuration and format its storage (idempotent)."""
        quorum = f"controller.quorum.bootstrap.servers=127.0.0.1:{self.node.controller_port}"
        props = self.node.configure(quorum, auto_replication(1))
        cluster_id_file = self.home / "cluster.id"
        if not cluster_id_file.exists():
            cluster_id_file.write_text(new_cluster_id())
        if not self.node.formatted:
            self.dist.format_storage(props, cluster_id_file.read_text().strip(), standalone=True)
        return props

    def start(self, timeout: float = 90.0) -> int:
        if (pid := self.node.pid()) is not None:
            return pid
        self.fetch()
        self.configure()
        agent = kafka_metrics.agent_option(self.infra)
        pid = self.node.start(self.dist, self.infra.kafka_heap, [agent])
        self.wait_ready(timeout)
        return pid

    def wait_ready(self, timeout: float) -> None:
        kafka_node.wait_ready(self.nodes, timeout)

    def stop(self) -> bool:
        return processes.stop(self.pid_file, grace_seconds=STOP_GRACE_SECONDS)

    def status(self) -> str:
        pid = self.node.pid()
        metrics = f"metrics on 127.0.0.1:{kafka_metrics.metrics_port(self.infra)}"
        where = f"{self.bootstrap}, {metrics}, data in {self.node.data_dir}"
        return f"kafka {self.version}: " + (f"running (pid {pid}), {where}" if pid else "stopped")
