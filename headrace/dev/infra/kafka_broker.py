"""A real Apache Kafka 4.x broker (KRaft, combined broker + controller) run with the machine's Java.

The jars are resolved from Maven Central by Maven (infra/kafka/pom.xml, shipped in the package,
pins the version and adds the log4j2 backend the broker POM lacks) into a cache outside the
repository. Data, logs and the PID file live in the state folder, so a restart keeps every topic.
The broker serves Prometheus metrics on `kafka_metrics_port` (headrace/dev/infra/kafka_metrics.py).
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from confluent_kafka import KafkaException

from headrace.dev.infra import kafka_metrics, ports, processes
from headrace.dev.infra.config import InfraSettings
from headrace.kafka import clients as kafka_clients
from headrace.runtime.errors import OperatorError
from headrace.runtime.paths import KAFKA_POM

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={data_dir}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
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


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", KAFKA_POM.read_text())
    assert match, f"{KAFKA_POM} lacks <kafka.version>"
    return match.group(1)


class KafkaBroker:
    def __init__(self, infra: InfraSettings) -> None:
        self.infra = infra
        self.version = kafka_version()
        self.libs = infra.cache_dir / f"kafka-{self.version}" / "libs"
        self.home = infra.state_dir.resolve() / "kafka"
        self.pid_file = self.home / "broker.pid"
        self.log_file = self.home / "broker.log"

    def fetch(self) -> Path:
        """Resolve the broker's jars into the cache (once)."""
        if self.libs.is_dir() and any(self.libs.glob("kafka_2.13-*.jar")):
            return self.libs
        if shutil.which("mvn") is None or shutil.which("java") is None:
            raise OperatorError(
                "Java 17 and Maven are needed to fetch Kafka; install them "
                "(apt-get install openjdk-17-jre-headless maven) and retry"
            )
        staging = self.libs.with_name("libs.partial")
        shutil.rmtree(staging, ignore_errors=True)
        cmd = [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(KAFKA_POM),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-Dmdep.includeScope=runtime",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
            raise OperatorError(f"Maven could not resolve Kafka {self.version}: {' | '.join(tail)}")
        staging.rename(self.libs)
        return self.libs

    def _classpath(self) -> str:
        return f"{self.libs}/*"

    def configure(self) -> Path:
        """Write the broker's configuration and format its storage (idempotent)."""
        self.home.mkdir(parents=True, exist_ok=True)
        props = self.home / "server.properties"
        props.write_text(
            SERVER_PROPERTIES.format(
                port=self.infra.kafka_port,
                controller_port=self.infra.kafka_controller_port,
                data_dir=self.home / "data",
            )
        )
        (self.home / "log4j2.properties").write_text(LOG4J2.format(log_file=self.log_file))
        cluster_id_file = self.home / "cluster.id"
        if not cluster_id_file.exists():
            cluster_id_file.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22])
        cmd = [
            "java",
            "-cp",
            self._classpath(),
            "kafka.tools.StorageTool",
            "format",
            # One argument with "=": a random id may start with "-" (URL-safe base64), which
            # argparse would read as an option ("--cluster-id: expected one argument").
            f"--cluster-id={cluster_id_file.read_text().strip()}",
            "-c",
            str(props),
            "--standalone",
            "-g",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise OperatorError(f"formatting Kafka storage failed: {result.stderr.strip()[-300:]}")
        return props

    def start(self, timeout: float = 90.0) -> int:
        if (pid := processes.read_pid(self.pid_file)) is not None:
            return pid
        self.fetch()
        props = self.configure()
        cmd = [
            "java",
            f"-Xmx{self.infra.kafka_heap}",
            "-Xms256m",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            kafka_metrics.agent_option(self.infra),
            "-cp",
            self._classpath(),
            "kafka.Kafka",
            str(props),
        ]
        pid = processes.start(cmd, self.pid_file, self.home / "broker.stdout")
        self.wait_ready(timeout)
        return pid

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if processes.read_pid(self.pid_file) is None:
                raise OperatorError(f"the Kafka broker exited at start; see {self.log_file}")
            # A client created before the listener is up logs a "Connection refused" line per
            # retry on stderr (librdkafka's own logging): wait for the port first.
            if not ports.accepts("127.0.0.1", self.infra.kafka_port):
                time.sleep(0.2)
                continue
            try:
                kafka_clients.admin(self.infra.bootstrap).list_topics(timeout=2)
                return
            except KafkaException:
                time.sleep(0.5)
        raise OperatorError(
            f"the Kafka broker did not answer within {timeout:.0f}s; see {self.log_file}"
        )

    def stop(self) -> bool:
        return processes.stop(self.pid_file, grace_seconds=30)

    def status(self) -> str:
        pid = processes.read_pid(self.pid_file)
        metrics = f"metrics on 127.0.0.1:{kafka_metrics.metrics_port(self.infra)}"
        where = f"{self.infra.bootstrap}, {metrics}, data in {self.home / 'data'}"
        return f"kafka {self.version}: " + (f"running (pid {pid}), {where}" if pid else "stopped")
