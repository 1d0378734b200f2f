"""A local Kafka cluster: several KRaft nodes, each a combined broker + controller, one quorum.

The nodes run from the same Maven-resolved distribution as the single broker
(`kafka_dist.py`), each with its own data, log and PID file under
`<state>/kafka-cluster/node-<n>/`, and one cluster id. The quorum is static: every node lists
every controller in `controller.quorum.voters`, so the cluster forms when a majority is up and
keeps a leader while one node of three is lost.

Ports: node n listens for clients on `kafka_port + 2(n-1)` and as a controller on
`kafka_controller_port + 2(n-1)`. At the defaults (19092, 19093) node 1 takes the single broker's
ports, node 2 19094/19095, node 3 19096/19097: one bootstrap address (127.0.0.1:19092) reaches
either layout, and the two never run at once from one state folder.
"""

from __future__ import annotations

import os
import signal

from headrace.dev.infra import kafka_metrics, kafka_node, processes
from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.kafka_dist import KafkaDistribution, new_cluster_id
from headrace.dev.infra.kafka_node import KafkaNode
from headrace.kafka.topics import Replication, auto_replication
from headrace.runtime.errors import OperatorError

PORT_STRIDE = 2
# Every node is sent SIGTERM at once; together they shut down in a few seconds (docs/operations.md).
STOP_GRACE_SECONDS = 30.0


class KafkaCluster:
    def __init__(self, infra: InfraSettings, brokers: int = 3) -> None:
        if brokers < 2:
            raise OperatorError("a Kafka cluster has at least 2 brokers; use 1 for a single broker")
        self.infra = infra
        self.dist = KafkaDistribution(infra.cache_dir)
        self.version = self.dist.version
        self.home = infra.state_dir.resolve() / "kafka-cluster"
        self.nodes = tuple(
            KafkaNode(
                n,
                infra.kafka_port + PORT_STRIDE * (n - 1),
                infra.kafka_controller_port + PORT_STRIDE * (n - 1),
                self.home / f"node-{n}",
                process_name="kafka",
            )
            for n in range(1, brokers + 1)
        )
        taken = [p for n in self.nodes for p in (n.port, n.controller_port)]
        if len(set(taken)) != len(taken):
            raise OperatorError(
                "HEADRACE_INFRA_KAFKA_PORT and HEADRACE_INFRA_KAFKA_CONTROLLER_PORT give nodes "
                f"the same port ({sorted(taken)}); make them differ by an odd number (19092, 19093)"
            )

    @property
    def bootstrap(self) -> str:
        return ",".join(n.address for n in self.nodes)

    @property
    def internal_replication(self) -> Replication:
        """Replication of the offsets, transaction state and share state topics."""
        return auto_replication(len(self.nodes))

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def configure(self) -> None:
        """Write every node's configuration and format its storage (idempotent)."""
        voters = ",".join(n.voter for n in self.nodes)
        self.home.mkdir(parents=True, exist_ok=True)
        cluster_id_file = self.home / "cluster.id"
        if not cluster_id_file.exists():
            cluster_id_file.write_text(new_cluster_id())
        cluster_id = cluster_id_file.read_text().strip()
        quorum = f"controller.quorum.voters={voters}"
        props = [n.configure(quorum, self.internal_replication) for n in self.nodes]
        unformatted = [p for p, n in zip(props, self.nodes, strict=True) if not n.formatted]
        self.dist.format_storages(unformatted, cluster_id, standalone=False)

    def start(self, timeout: float = 120.0) -> list[int]:
        """Start the nodes that are not running (all at once: a quorum needs a majority up)."""
        self.dist.fetch()
        self.configure()
        pids = [node.pid() or self._start(node) for node in self.nodes]
        kafka_node.wait_ready(self.nodes, timeout)
        return pids

    def start_node(self, node_id: int, timeout: float = 90.0) -> int:
        """Start one node again (after `kill`), and wait until the cluster lists it."""
        node = self.node(node_id)
        pid = node.pid() or self._start(node)
        kafka_node.wait_ready(self.nodes, timeout)
        return pid

    def _start(self, node: KafkaNode) -> int:
        agent = kafka_metrics.agent_option(self.infra, node.node_id)
        return node.start(self.dist, self.infra.kafka_node_heap, [agent])

    def kill(self, node_id: int) -> None:
        """SIGKILL one node, as a machine that is lost: no controlled shutdown, no flush."""
        node = self.node(node_id)
        pid = node.pid()
        if pid is None:
            raise OperatorError(f"Kafka node {node_id} is not running")
        os.killpg(pid, signal.SIGKILL)
        processes.stop(node.pid_file, grace_seconds=5)  # reaps it and removes the PID file

    def stop(self) -> bool:
        """Stop every node at once; True if any was running."""
        pid_files = [n.pid_file for n in self.nodes]
        return bool(processes.stop_all(pid_files, grace_seconds=STOP_GRACE_SECONDS))

    def status(self) -> str:
        lines = [f"kafka {self.version}: cluster of {len(self.nodes)}, bootstrap {self.bootstrap}"]
        for node in self.nodes:
            pid = node.pid()
            state = f"running (pid {pid})" if pid else "stopped"
            metrics = f"metrics on 127.0.0.1:{kafka_metrics.metrics_port(self.infra, node.node_id)}"
            lines.append(
                f"  node {node.node_id}: {node.address} {state}, {metrics}, data in {node.data_dir}"
            )
        return "\n".join(lines)
