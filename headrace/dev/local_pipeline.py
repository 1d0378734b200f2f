"""Starting and stopping the services as local processes (used by the demo, tests and fault suite).

Each service instance is a process with its own log, PID file, port and instance id; instance 0
of each service is "the" service, more instances scale its consumer group out.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from headrace.dev.infra import processes
from headrace.runtime import registry
from headrace.runtime.errors import OperatorError
from headrace.runtime.settings import CommonSettings

SERVICES = registry.NAMES
INSTANCE_PORT_STRIDE = 10
LOWEST_PORT = min(s.port for s in registry.SERVICES.values())


def settings_env(common: CommonSettings, home: Path) -> dict[str, str]:
    """The HEADRACE_* environment that gives every service of a pipeline `common`.

    `home` holds the summarizer's local state. Optional settings are passed only when set.
    """
    env = {
        "HEADRACE_BOOTSTRAP_SERVERS": common.bootstrap_servers,
        "HEADRACE_TOPIC_PREFIX": common.topic_prefix,
        "HEADRACE_BUCKET_URL": common.bucket_url,
        "HEADRACE_CATALOG_URL": common.catalog_url,
        "HEADRACE_SCHEMAS_DIR": str(common.schemas_dir),
        "HEADRACE_SUMMARIZER_DATA_DIR": str(home / "summarizer"),
    }
    if common.gcs_endpoint:
        env["HEADRACE_GCS_ENDPOINT"] = common.gcs_endpoint
    if common.schema_registry_url:
        env["HEADRACE_SCHEMA_REGISTRY_URL"] = common.schema_registry_url
    return env


@dataclass
class LocalPipeline:
    """The services of one pipeline, each a process with its log and PID file under `home`."""

    home: Path
    env: dict[str, str]
    port_base: int = 0  # 0 keeps the default ports; otherwise producer = port_base + 1, ...

    def port(self, service: str, instance: int = 0) -> int:
        default = registry.service(service).port + INSTANCE_PORT_STRIDE * instance
        return self.port_base + 1 + default - LOWEST_PORT if self.port_base else default

    def _name(self, service: str, instance: int) -> str:
        return service if instance == 0 else f"{service}-{instance}"

    def pid_file(self, service: str, instance: int = 0) -> Path:
        return self.home / "pids" / f"{self._name(service, instance)}.pid"

    def log_file(self, service: str, instance: int = 0) -> Path:
        return self.home / "logs" / f"{self._name(service, instance)}.log"

    def start_instance(
        self, service: str, instance: int = 0, extra_env: dict[str, str] | None = None
    ) -> int:
        env = {
            **self.env,
            f"HEADRACE_{service.upper()}_PORT": str(self.port(service, instance)),
            # Stable per instance: a restarted instance fences its own zombie (transactional id).
            "HEADRACE_INSTANCE_ID": f"{self.env.get('HEADRACE_TOPIC_PREFIX', 'headrace')}-"
            f"{self._name(service, instance)}",
            **(extra_env or {}),
        }
        return processes.start(
            [sys.executable, "-m", registry.service(service).package],
            self.pid_file(service, instance),
            self.log_file(service, instance),
            env=env,
        )

    def start(self, services: tuple[str, ...] = SERVICES) -> None:
        for s in services:
            self.start_instance(s)

    def wait_ready(self, services: tuple[str, ...] = SERVICES, timeout: float = 90.0) -> None:
        for s in services:
            self.wait_instance_ready(s, 0, timeout)

    def wait_instance_ready(self, service: str, instance: int = 0, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.port(service, instance)}/readyz"
        while True:
            if not self.alive(service, instance):
                log = self.log_file(service, instance)
                raise OperatorError(f"{service} exited at start; see {log}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise OperatorError(f"{service} not ready after {timeout:.0f}s; see its log")
            time.sleep(0.3)

    def alive(self, service: str, instance: int = 0) -> bool:
        return processes.read_pid(self.pid_file(service, instance)) is not None

    def signal(self, service: str, sig: signal.Signals, instance: int = 0) -> bool:
        """Send `sig` to the instance's process group; False if it is not running."""
        pid = processes.read_pid(self.pid_file(service, instance))
        if pid is None:
            return False
        os.killpg(pid, sig)
        return True

    def stop_instance(self, service: str, instance: int = 0, grace_seconds: float = 20.0) -> None:
        processes.stop(self.pid_file(service, instance), grace_seconds=grace_seconds)

    def stop(self, services: tuple[str, ...] = SERVICES) -> None:
        for pid_file in sorted((self.home / "pids").glob("*.pid")):
            if pid_file.stem.split("-")[0] in services:
                processes.stop(pid_file, grace_seconds=20)
