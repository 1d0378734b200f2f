"""Prometheus metrics of a local Kafka broker: the JMX exporter Java agent, attached per node.

The agent jar is resolved from Maven Central by Maven (infra/kafka/metrics-agent.pom.xml pins its
version) into the same cache as the Kafka jars, never into the repository. It reads the MBeans
named in infra/kafka/kafka-metrics.yml (the rules compose and Strimzi use too) and serves them over
HTTP on 127.0.0.1 at the node's metrics port, for the `kafka` job of deploy/prometheus.

A single broker is node 1 on `kafka_metrics_port`; node n of a local cluster takes
`kafka_metrics_port + 10 * (n - 1)`, so each node calls `agent_option` with its own number.
"""

from __future__ import annotations

import re
from pathlib import Path

from headrace.dev.infra import maven
from headrace.dev.infra.config import InfraSettings
from headrace.runtime.errors import OperatorError
from headrace.runtime.paths import KAFKA_METRICS_AGENT_POM, KAFKA_METRICS_RULES

NODE_PORT_STRIDE = 10


def agent_version() -> str:
    text = KAFKA_METRICS_AGENT_POM.read_text()
    match = re.search(r"<jmx.exporter.version>([^<]+)</jmx.exporter.version>", text)
    assert match, f"{KAFKA_METRICS_AGENT_POM} lacks <jmx.exporter.version>"
    return match.group(1)


def metrics_port(infra: InfraSettings, node: int = 1) -> int:
    """The port node `node` (1-based) serves its metrics on."""
    return infra.kafka_metrics_port + NODE_PORT_STRIDE * (node - 1)


def agent_option(infra: InfraSettings, node: int = 1) -> str:
    """The JVM option that attaches the agent to node `node`, fetching the jar first (once).

    Passed on the broker's java command line: it is what KAFKA_OPTS carries for Kafka's own start
    scripts (docker-compose.yml), which the local brokers do not use.
    """
    jar = fetch_agent(infra.cache_dir)
    return f"-javaagent:{jar}=127.0.0.1:{metrics_port(infra, node)}:{KAFKA_METRICS_RULES}"


def fetch_agent(cache_dir: Path) -> Path:
    """The agent jar in the cache, resolved from Maven Central the first time."""
    version = agent_version()
    folder = cache_dir / f"jmx-exporter-{version}"
    jar = folder / f"jmx_prometheus_javaagent-{version}.jar"
    if jar.is_file():
        return jar
    what = f"the JMX exporter agent {version}"
    maven.copy_dependencies(KAFKA_METRICS_AGENT_POM, folder, what)
    if not jar.is_file():
        raise OperatorError(f"Maven could not resolve {what}: {jar.name} not fetched")
    return jar
