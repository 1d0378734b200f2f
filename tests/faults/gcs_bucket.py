"""The fault suite's gs:// bucket: the GCS emulator with the fault proxy in front of it.

Services reach the bucket through the proxy (`service_endpoint`), so bucket faults hit every
stage that writes, lists, reads or deletes objects. The suite's own checks use the emulator
directly (`check_endpoint`): the checker reads the truth, it is not under test.
"""

from __future__ import annotations

import sys
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headrace.dev.infra import processes
from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.gcs_emulator import GcsEmulator
from headrace.runtime.errors import OperatorError
from tests.faults import gcs_fault_proxy

# Longer than the bucket client's read timeout (headrace/lake/bucket.py), so a stalled request is
# one the client gives up on, not one that merely comes back late.
STALL_SECONDS = 40.0


@dataclass
class GcsBucket:
    home: Path
    seed: int
    taken: frozenset[int] = frozenset()  # ports chosen for the broker and services, not yet bound

    def __post_init__(self) -> None:
        from headrace.dev.infra.ports import free_port_block

        base = free_port_block(2)
        while {base, base + 1} & self.taken:
            base = free_port_block(2)
        self.emulator = GcsEmulator(
            InfraSettings(state_dir=self.home / "infra", gcs_port=base, gcs_bucket="headrace")
        )
        self.proxy_port = base + 1
        self.proxy_pid = self.home / "pids" / "gcs-proxy.pid"

    @property
    def check_endpoint(self) -> str:
        return self.emulator.infra.gcs_endpoint

    @property
    def service_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def url(self, prefix: str) -> str:
        return f"gs://{self.emulator.infra.gcs_bucket}/{prefix}"

    def start(self, timeout: float = 30.0) -> None:
        self.emulator.start()
        cmd = [
            sys.executable,
            "-m",
            "tests.faults.gcs_fault_proxy",
            "--port",
            str(self.proxy_port),
            "--upstream",
            self.check_endpoint,
            "--seed",
            str(self.seed),
            "--stall-seconds",
            str(STALL_SECONDS),
        ]
        processes.start(cmd, self.proxy_pid, self.home / "logs" / "gcs-proxy.log")
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.stats()
                return
            except (urllib.error.URLError, OSError):
                if processes.read_pid(self.proxy_pid) is None or time.monotonic() > deadline:
                    raise OperatorError("the GCS fault proxy did not start; see its log") from None
                time.sleep(0.2)

    def fault(self, mode: str, fraction: float, seconds: float) -> None:
        gcs_fault_proxy.set_mode(self.service_endpoint, mode, fraction, seconds)

    def stats(self) -> dict[str, Any]:
        return gcs_fault_proxy.stats(self.service_endpoint)

    def stop(self) -> None:
        processes.stop(self.proxy_pid, grace_seconds=5)
        self.emulator.stop()
