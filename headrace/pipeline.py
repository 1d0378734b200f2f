"""Starting and stopping the five services as local processes (used by the demo and the tests)."""

from __future__ import annotations

import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from headrace.errors import OperatorError
from headrace.infra import processes

SERVICES = ("producer", "stager", "validator", "loader", "summarizer")
DEFAULT_PORTS = {
    "producer": 8081,
    "stager": 8082,
    "validator": 8083,
    "loader": 8084,
    "summarizer": 8085,
}


@dataclass
class LocalPipeline:
    """The services of one pipeline, each a process with its log and PID file under `home`."""

    home: Path
    env: dict[str, str]
    port_base: int = 0  # 0 keeps the default ports; otherwise producer = port_base + 1, ...

    def port(self, service: str) -> int:
        default = DEFAULT_PORTS[service]
        return self.port_base + default - 8080 if self.port_base else default

    def _env(self, service: str) -> dict[str, str]:
        return {**self.env, f"HEADRACE_{service.upper()}_PORT": str(self.port(service))}

    def start(self, services: tuple[str, ...] = SERVICES) -> None:
        for s in services:
            processes.start(
                [sys.executable, "-m", f"services.{s}"],
                self.home / "pids" / f"{s}.pid",
                self.home / "logs" / f"{s}.log",
                env=self._env(s),
            )

    def wait_ready(self, services: tuple[str, ...] = SERVICES, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        for s in services:
            url = f"http://127.0.0.1:{self.port(s)}/readyz"
            while True:
                if processes.read_pid(self.home / "pids" / f"{s}.pid") is None:
                    raise OperatorError(
                        f"{s} exited at start; see {self.home / 'logs' / f'{s}.log'}"
                    )
                try:
                    with urllib.request.urlopen(url, timeout=1) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise OperatorError(f"{s} not ready after {timeout:.0f}s; see its log")
                time.sleep(0.3)

    def alive(self, service: str) -> bool:
        return processes.read_pid(self.home / "pids" / f"{service}.pid") is not None

    def stop(self, services: tuple[str, ...] = SERVICES) -> None:
        for s in services:
            processes.stop(self.home / "pids" / f"{s}.pid", grace_seconds=20)
