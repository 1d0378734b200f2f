"""`headrace stack`: what docker-compose.yml declares, as local processes, without Docker.

The file is read, not copied: each compose service maps to a local starter in LOCAL (the one
place that decides it), and a service the table does not know is refused, so compose and the
stack cannot drift apart silently. The services get compose's environment (the x-headrace-env
block and their own), with every compose address (`kafka-1:9092`, `http://gcs:4443`,
`host=postgres`) turned into the local one and every named volume into a folder of the state
folder. Start order is the table's; `down` stops in reverse.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from headrace.dev import compose_file, stack_parts
from headrace.dev.compose_file import Compose
from headrace.dev.infra import kafka_metrics
from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.kafka_cluster import KafkaCluster
from headrace.dev.local_pipeline import SERVICES, LocalPipeline
from headrace.dev.stack_config import StackSettings
from headrace.dev.stack_parts import Part, Row
from headrace.runtime import registry
from headrace.runtime.errors import OperatorError

Starter = Callable[["Stack", str], Part]

# compose service -> local starter, in start order (`down` goes backwards).
LOCAL: dict[str, Starter] = {
    "postgres": stack_parts.PostgresPart,
    "gcs": stack_parts.GcsPart,
    "kafka-metrics-agent": stack_parts.MetricsAgentPart,
    "kafka-1": stack_parts.KafkaPart,
    "kafka-2": stack_parts.KafkaPart,
    "kafka-3": stack_parts.KafkaPart,
    "topics": stack_parts.TopicsPart,
    **{name: stack_parts.ServicePart for name in SERVICES},
    "alertmanager": stack_parts.AlertmanagerPart,
    "prometheus": stack_parts.PrometheusPart,
    "grafana": stack_parts.SkippedPart,
}

# Ports compose publishes that the stack serves elsewhere, and why (docs/operations.md).
MOVED_PORTS = {"gcs": "the emulator listens on HEADRACE_INFRA_GCS_PORT (19443)"}

# Container ports compose's addresses name, by component kind.
KAFKA_CLIENT, KAFKA_CONTROLLER, KAFKA_METRICS = 9092, 9093, 9404
GCS_PORT, POSTGRES_PORT, PROMETHEUS_PORT, ALERTMANAGER_PORT = 4443, 5432, 9090, 9093

_HOST_PORT = re.compile(r"(?<![\w.-])([a-z][a-z0-9-]*):(\d+)")
_LIBPQ_HOST = re.compile(r"\bhost=([a-z][a-z0-9-]*)")


class Stack:
    def __init__(self, settings: StackSettings, compose: Compose, infra: InfraSettings) -> None:
        unknown = [name for name in compose["services"] if name not in LOCAL]
        if unknown:
            raise OperatorError(
                f"docker-compose.yml declares {', '.join(unknown)}, which `headrace stack` does "
                "not know; map it in LOCAL in headrace/dev/stack.py"
            )
        self.settings, self.compose = settings, compose
        self.home = settings.state_dir.resolve()
        password = compose_file.environment(compose, "postgres").get("POSTGRES_PASSWORD")
        self.infra = infra.model_copy(
            update={
                "state_dir": self.home / "infra",
                "postgres_password": password or infra.postgres_password,
            }
        )
        self.kafka_nodes = [n for n in compose["services"] if LOCAL[n] is stack_parts.KafkaPart]
        self.kafka = KafkaCluster(self.infra, len(self.kafka_nodes))
        self.pipeline = LocalPipeline(self.home, {}, port_base=settings.service_port_base)
        self.addresses = self._addresses()
        parts: dict[str, Part] = {}
        for name, starter in LOCAL.items():
            if name in compose["services"]:
                part = starter(self, name)
                parts.setdefault(part.key, part)
        self.parts = list(parts.values())

    def _addresses(self) -> dict[tuple[str, int], int]:
        """(compose host, container port) -> local port on 127.0.0.1."""
        found = {
            ("gcs", GCS_PORT): self.infra.gcs_port,
            ("postgres", POSTGRES_PORT): self.infra.postgres_port,
            ("prometheus", PROMETHEUS_PORT): self.settings.prometheus_port,
            ("alertmanager", ALERTMANAGER_PORT): self.settings.alertmanager_port,
        }
        for name in SERVICES:
            found[(name, registry.service(name).port)] = self.pipeline.port(name)
        for name, node in zip(self.kafka_nodes, self.kafka.nodes, strict=True):
            found[(name, KAFKA_CLIENT)] = node.port
            found[(name, KAFKA_CONTROLLER)] = node.controller_port
            found[(name, KAFKA_METRICS)] = kafka_metrics.metrics_port(self.infra, node.node_id)
        return found

    def local_port(self, service: str, container_port: int) -> int | None:
        return self.addresses.get((service, container_port))

    def local_address(self, address: str) -> str:
        """`host:port` of compose's network -> `127.0.0.1:port`; one line if it is not run here."""
        return self.translate("", address, "")

    def translate(self, key: str, value: str, service: str) -> str:
        """A compose environment value as the local process needs it."""
        if value == "0.0.0.0":  # no container network: listen on the loopback only
            return "127.0.0.1"
        if key.endswith("_PORT") and value.isdigit():
            port = self.local_port(service, int(value))
            return str(port) if port else value
        value = _HOST_PORT.sub(lambda m: self._local(m[1], int(m[2]), m[0]), value)
        value = _LIBPQ_HOST.sub(lambda m: self._libpq_host(m[1], m[0]), value)
        for path, volume in compose_file.named_volumes(self.compose, service).items():
            if value == path or value.startswith(path + "/"):
                value = str(self.home / "volumes" / volume) + value[len(path) :]
        return value

    def _local(self, host: str, port: int, original: str) -> str:
        if host not in self.compose["services"]:
            return original  # not one of compose's hostnames (a URL scheme, an outside host)
        local = self.local_port(host, port)
        if local is None:
            raise OperatorError(
                f"docker-compose.yml names {host}:{port}, which `headrace stack` does not "
                "serve; add the port to Stack._addresses in headrace/dev/stack.py"
            )
        return f"127.0.0.1:{local}"

    def _libpq_host(self, host: str, original: str) -> str:
        """libpq's `host=postgres` (its default port 5432) -> `host=127.0.0.1 port=<local>`."""
        if host not in self.compose["services"]:
            return original
        local = self._local(host, POSTGRES_PORT, original)
        return "host={} port={}".format(*local.split(":"))

    def service_env(self, service: str) -> dict[str, str]:
        """Compose's environment of `service`, translated for a local process."""
        env = compose_file.environment(self.compose, service)
        return {k: self.translate(k, v, service) for k, v in env.items()}

    def process_env(self, service: str) -> dict[str, str]:
        return {**os.environ, **self.service_env(service)}

    def client_env(self) -> dict[str, str]:
        """What a `headrace` command needs to reach this stack (replay, report, sql, check):
        the loader's environment, which reaches Kafka, the bucket and the catalog, without the
        loader's own settings."""
        own = "HEADRACE_LOADER_"
        return {k: v for k, v in self.service_env("loader").items() if not k.startswith(own)}

    def up(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        for part in self.parts:
            part.start()
        for part in self.parts:
            part.wait()

    def down(self) -> None:
        for part in reversed(self.parts):
            part.stop()

    def rows(self) -> list[Row]:
        return [row for part in self.parts for row in part.rows()]

    def pids(self) -> list[int]:
        return [row.pid for row in self.rows() if row.pid]


def open_stack(compose_path: Path | None = None) -> Stack:
    """The stack of this checkout's docker-compose.yml, with the settings of the environment."""
    from headrace.runtime import settings

    compose = compose_file.load(compose_path) if compose_path else compose_file.load()
    return Stack(settings.load(StackSettings), compose, settings.load(InfraSettings))
