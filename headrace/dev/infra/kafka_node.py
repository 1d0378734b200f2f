"""One local Kafka node (KRaft, combined broker + controller): its files, its process, readiness.

A single broker and each node of a cluster are the same thing with a different quorum line and
replication of the internal topics; data, logs and the PID file live in the node's home.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException

from headrace.dev.infra import ports, processes
from headrace.dev.infra.kafka_dist import KafkaDistribution
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Replication
from headrace.runtime.errors import OperatorError

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id={node_id}
{quorum}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data_dir}
num.partitions=1
default.replication.factor={factor}
min.insync.replicas={min_insync}
offsets.topic.replication.factor={factor}
offsets.topic.num.partitions=6
transaction.state.log.replication.factor={factor}
transaction.state.log.min.isr={min_insync}
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor={factor}
share.coordinator.state.topic.min.isr={min_insync}
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
"""

LOG4J2 = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.server.name = org.apache.kafka.server
logger.server.level = INFO
"""


@dataclass(frozen=True)
class KafkaNode:
    node_id: int
    port: int
    controller_port: int
    home: Path
    # Kept from the single broker's layout, so a state folder of an older version still starts.
    process_name: str = "broker"

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.process_name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.process_name}.log"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def formatted(self) -> bool:
        """Whether kafka-storage formatted the log dir (a JVM start saved when it did)."""
        return (self.data_dir / "meta.properties").is_file()

    @property
    def props(self) -> Path:
        return self.home / "server.properties"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def voter(self) -> str:
        return f"{self.node_id}@127.0.0.1:{self.controller_port}"

    def configure(self, quorum: str, internal: Replication) -> Path:
        """Write server.properties and log4j2.properties; `quorum` is the quorum's line."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.props.write_text(
            SERVER_PROPERTIES.format(
                node_id=self.node_id,
                quorum=quorum,
                port=self.port,
                controller_port=self.controller_port,
                data_dir=self.data_dir,
                factor=internal.factor,
                min_insync=internal.min_insync,
            )
        )
        (self.home / "log4j2.properties").write_text(LOG4J2.format(log_file=self.log_file))
        return self.props

    def start(self, dist: KafkaDistribution, heap: str, jvm_options: Sequence[str] = ()) -> int:
        log4j = self.home / "log4j2.properties"
        cmd = dist.server_command(self.props, log4j, heap, jvm_options)
        return processes.start(cmd, self.pid_file, self.home / f"{self.process_name}.stdout")

    def pid(self) -> int | None:
        return processes.read_pid(self.pid_file)


def wait_ready(nodes: Sequence[KafkaNode], timeout: float) -> None:
    """Wait until every node listens and the cluster's metadata lists every one of them."""
    bootstrap = ",".join(n.address for n in nodes)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if dead := [n for n in nodes if n.pid() is None]:
            node = dead[0]
            raise OperatorError(f"Kafka node {node.node_id} exited at start; see {node.log_file}")
        # A client created before the listener is up logs a "Connection refused" line per
        # retry on stderr (librdkafka's own logging): wait for the ports first.
        if not all(ports.accepts("127.0.0.1", n.port) for n in nodes):
            time.sleep(0.2)
            continue
        try:
            metadata = kafka_clients.admin(bootstrap).list_topics(timeout=2)
        except KafkaException:
            time.sleep(0.5)
            continue
        if {n.node_id for n in nodes} <= set(metadata.brokers):
            return
        time.sleep(0.2)
    where = " ".join(str(n.log_file) for n in nodes)
    raise OperatorError(f"Kafka did not answer within {timeout:.0f}s; see {where}")
