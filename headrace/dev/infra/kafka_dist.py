"""The Apache Kafka distribution the local brokers run: jars from Maven Central, Kafka's tools.

The jars are resolved from Maven Central by Maven (infra/kafka/pom.xml, shipped in the package,
pins the version and adds the log4j2 backend the broker POM lacks) into a cache outside the
repository, once; a single broker and every node of a cluster run from the same copy.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import uuid
from collections.abc import Sequence
from pathlib import Path

from headrace.dev.infra import maven
from headrace.runtime.errors import OperatorError
from headrace.runtime.paths import KAFKA_POM


def kafka_version() -> str:
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", KAFKA_POM.read_text())
    assert match, f"{KAFKA_POM} lacks <kafka.version>"
    return match.group(1)


def new_cluster_id() -> str:
    """A random KRaft cluster id (22 characters of URL-safe base64, as kafka-storage makes)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22]


class KafkaDistribution:
    def __init__(self, cache_dir: Path) -> None:
        self.version = kafka_version()
        self.libs = cache_dir / f"kafka-{self.version}" / "libs"

    def fetch(self) -> Path:
        """Resolve the broker's jars into the cache (once)."""
        if self.libs.is_dir() and any(self.libs.glob("kafka_2.13-*.jar")):
            return self.libs
        if shutil.which("mvn") is None or shutil.which("java") is None:
            raise OperatorError(
                "Java 17 and Maven are needed to fetch Kafka; install them "
                "(apt-get install openjdk-17-jre-headless maven) and retry"
            )
        maven.copy_dependencies(
            KAFKA_POM, self.libs, f"Kafka {self.version}", "-Dmdep.includeScope=runtime"
        )
        return self.libs

    @property
    def classpath(self) -> str:
        return f"{self.libs}/*"

    def format_storage(self, props: Path, cluster_id: str, *, standalone: bool) -> None:
        """Format a node's log dirs; see `format_storages`."""
        self.format_storages([props], cluster_id, standalone=standalone)

    def format_storages(
        self, nodes_props: Sequence[Path], cluster_id: str, *, standalone: bool
    ) -> None:
        """Format the log dirs of nodes (idempotent: `-g` skips those already formatted).

        One kafka-storage JVM per node, all at once: each takes 3-4 s to start on a busy
        2-core machine, which in turn would make a cluster's start that much longer.
        `standalone` makes the node a single-voter dynamic quorum; without it the quorum is the
        static `controller.quorum.voters` of the properties, which kafka-storage then requires.
        """
        running = [
            subprocess.Popen(
                self._format_command(props, cluster_id, standalone),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for props in nodes_props
        ]
        for proc in running:
            _, stderr = proc.communicate()
            if proc.returncode != 0:
                raise OperatorError(f"formatting Kafka storage failed: {stderr.strip()[-300:]}")

    def _format_command(self, props: Path, cluster_id: str, standalone: bool) -> list[str]:
        return [
            "java",
            "-cp",
            self.classpath,
            "kafka.tools.StorageTool",
            "format",
            # One argument with "=": a random id may start with "-" (URL-safe base64), which
            # argparse would read as an option ("--cluster-id: expected one argument").
            f"--cluster-id={cluster_id}",
            "-c",
            str(props),
            *(["--standalone"] if standalone else []),
            "-g",
        ]

    def server_command(
        self, props: Path, log4j: Path, heap: str, jvm_options: Sequence[str] = ()
    ) -> list[str]:
        return [
            "java",
            f"-Xmx{heap}",
            "-Xms256m",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={log4j}",
            *jvm_options,
            "-cp",
            self.classpath,
            "kafka.Kafka",
            str(props),
        ]
