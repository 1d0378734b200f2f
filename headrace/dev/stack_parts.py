"""The local starters of `headrace stack`: each starts, stops and reports one kind of component
of docker-compose.yml as local processes (headrace/dev/stack.py maps compose's names to them).

`start` may return before the component answers; `wait` blocks until it does, so the slow ones
(the services, each a Python start) come up side by side.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headrace.dev import compose_file
from headrace.dev.infra import kafka_metrics, local_kafka, processes
from headrace.dev.infra.gcs_emulator import GcsEmulator
from headrace.dev.infra.postgres_server import PostgresServer
from headrace.runtime.errors import OperatorError
from headrace.runtime.paths import DEPLOY_DIR

if TYPE_CHECKING:
    from headrace.dev.stack import Stack


@dataclass(frozen=True)
class Row:
    """One line of `stack up` / `stack status`."""

    component: str  # compose's service name
    local: str  # what runs it here
    address: str
    pid: int | None
    note: str = ""

    @property
    def state(self) -> str:
        return f"running (pid {self.pid})" if self.pid else (self.note or "stopped")


class Part:
    """A component of the stack; `key` names it once where compose has several (Kafka nodes)."""

    key = ""

    def __init__(self, stack: Stack, name: str) -> None:
        self.stack, self.name = stack, name
        self.key = self.key or name

    def start(self) -> None:
        pass

    def wait(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def rows(self) -> list[Row]:
        return []


class PostgresPart(Part):
    def start(self) -> None:
        PostgresServer(self.stack.infra).start(self.stack.settings.ready_timeout_seconds)

    def stop(self) -> None:
        PostgresServer(self.stack.infra).stop()

    def rows(self) -> list[Row]:
        address = f"127.0.0.1:{self.stack.infra.postgres_port}"
        pid = PostgresServer(self.stack.infra).pid()
        return [Row(self.name, "PostgreSQL (Debian)", address, pid)]


class GcsPart(Part):
    def start(self) -> None:
        GcsEmulator(self.stack.infra).start()

    def stop(self) -> None:
        GcsEmulator(self.stack.infra).stop()

    def rows(self) -> list[Row]:
        pid = processes.read_pid(GcsEmulator(self.stack.infra).pid_file)
        return [Row(self.name, "gcp-storage-emulator", self.stack.infra.gcs_endpoint, pid)]


class MetricsAgentPart(Part):
    """Compose's one-shot that puts the JMX exporter jar in a volume: here, the Maven cache."""

    def start(self) -> None:
        kafka_metrics.fetch_agent(self.stack.infra.cache_dir)

    def rows(self) -> list[Row]:
        version = kafka_metrics.agent_version()
        folder = self.stack.infra.cache_dir / f"jmx-exporter-{version}"
        note = "resolved" if folder.is_dir() else "not resolved yet"
        return [Row(self.name, "JMX exporter jar (Maven)", str(folder), None, note)]


class KafkaPart(Part):
    """kafka-1 ... kafka-N: one local cluster of N nodes (kafka_cluster.py), started at once."""

    key = "kafka"

    def start(self) -> None:
        local_kafka.start(self.stack.infra, len(self.stack.kafka_nodes))

    def stop(self) -> None:
        local_kafka.stop(self.stack.infra)

    def rows(self) -> list[Row]:
        cluster = self.stack.kafka
        return [
            Row(name, f"Kafka {cluster.version} node {node.node_id}", node.address, node.pid())
            for name, node in zip(self.stack.kafka_nodes, cluster.nodes, strict=True)
        ]


class TopicsPart(Part):
    """Compose's one-shot `headrace topics`, with compose's environment for it."""

    @property
    def done_file(self) -> Path:
        return self.stack.home / "topics.done"

    def start(self) -> None:
        log = self.stack.home / "logs" / "topics.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        timeout = self.stack.settings.ready_timeout_seconds
        try:
            with log.open("ab") as out:
                result = subprocess.run(
                    [sys.executable, "-m", "headrace", "topics"],
                    env=self.stack.process_env(self.name),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                )
        except subprocess.TimeoutExpired:
            raise OperatorError(f"`headrace topics` ran past {timeout:.0f}s; see {log}") from None
        if result.returncode != 0:
            raise OperatorError(f"`headrace topics` failed; see {log}")
        self.done_file.write_text("0\n")

    def stop(self) -> None:
        self.done_file.unlink(missing_ok=True)

    def rows(self) -> list[Row]:
        note = "exited 0" if self.done_file.exists() else "not run"
        bootstrap = self.stack.kafka.bootstrap
        return [Row(self.name, "headrace topics (one-shot)", bootstrap, None, note)]


class ServicePart(Part):
    def start(self) -> None:
        self.stack.pipeline.start_instance(self.name, extra_env=self.stack.service_env(self.name))

    def wait(self) -> None:
        timeout = self.stack.settings.ready_timeout_seconds
        self.stack.pipeline.wait_instance_ready(self.name, 0, timeout)

    def stop(self) -> None:
        self.stack.pipeline.stop_instance(self.name)

    def rows(self) -> list[Row]:
        pipeline = self.stack.pipeline
        pid = processes.read_pid(pipeline.pid_file(self.name))
        address = f"http://127.0.0.1:{pipeline.port(self.name)}"
        return [Row(self.name, f"python -m services.{self.name}", address, pid)]


class DaemonPart(Part):
    """A Debian binary run from the state folder, answering /-/ready on its port."""

    binaries: tuple[str, ...] = ()
    installs = ""

    @property
    def home(self) -> Path:
        return self.stack.home / self.name

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def port(self) -> int:
        raise NotImplementedError

    def binary(self) -> str:
        for name in self.binaries:
            if found := shutil.which(name):
                return found
        raise OperatorError(f"{self.binaries[0]} is not installed; apt-get install {self.installs}")

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        processes.start(self.command(), self.pid_file, self.home / f"{self.name}.log")

    def wait(self) -> None:
        deadline = time.monotonic() + self.stack.settings.ready_timeout_seconds
        while not _answers(f"http://127.0.0.1:{self.port}/-/ready"):
            if processes.read_pid(self.pid_file) is None:
                raise OperatorError(f"{self.name} exited at start; see {self.home}")
            if time.monotonic() > deadline:
                raise OperatorError(f"{self.name} not ready; see {self.home}")
            time.sleep(0.3)

    def stop(self) -> None:
        processes.stop(self.pid_file, grace_seconds=15)

    def rows(self) -> list[Row]:
        pid = processes.read_pid(self.pid_file)
        return [Row(self.name, self.binaries[0], f"http://127.0.0.1:{self.port}", pid)]


class AlertmanagerPart(DaemonPart):
    binaries = ("prometheus-alertmanager", "alertmanager")
    installs = "prometheus-alertmanager"

    @property
    def port(self) -> int:
        return self.stack.settings.alertmanager_port

    def command(self) -> list[str]:
        return [
            self.binary(),
            f"--config.file={DEPLOY_DIR / 'alertmanager' / 'alertmanager.yml'}",
            f"--storage.path={self.home / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # one instance: no gossip port to collide on
        ]


class PrometheusPart(DaemonPart):
    """deploy/prometheus/prometheus.yml with every compose address turned into a local one."""

    binaries = ("prometheus",)
    installs = "prometheus"

    @property
    def port(self) -> int:
        return self.stack.settings.prometheus_port

    def command(self) -> list[str]:
        yaml = compose_file.yaml_module()
        source = DEPLOY_DIR / "prometheus"
        config: dict[str, Any] = yaml.safe_load((source / "prometheus.yml").read_text())
        config["rule_files"] = [str(source / f) for f in config.get("rule_files", [])]
        configs = [*config.get("alerting", {}).get("alertmanagers", [])]
        configs += config.get("scrape_configs", [])
        for group in configs:
            for static in group.get("static_configs", []):
                static["targets"] = [self.stack.local_address(t) for t in static["targets"]]
        path = self.home / "prometheus.yml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return [
            self.binary(),
            f"--config.file={path}",
            f"--storage.tsdb.path={self.home / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]


class SkippedPart(Part):
    def rows(self) -> list[Row]:
        note = "skipped: Grafana is not installed here (deploy/grafana holds its dashboard)"
        return [Row(self.name, "-", "-", None, note)]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False
