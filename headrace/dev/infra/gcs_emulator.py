"""A GCS API emulator (gcp-storage-emulator from PyPI) for the gs:// bucket path."""

from __future__ import annotations

import shutil
import sys
import time
import urllib.request
from pathlib import Path

from headrace.dev.infra import processes
from headrace.dev.infra.config import InfraSettings
from headrace.runtime.errors import OperatorError


class GcsEmulator:
    def __init__(self, infra: InfraSettings) -> None:
        self.infra = infra
        self.home = infra.state_dir.resolve() / "gcs"
        self.pid_file = self.home / "emulator.pid"

    def _command(self) -> list[str]:
        exe = shutil.which("gcp-storage-emulator") or str(
            Path(sys.executable).parent / "gcp-storage-emulator"
        )
        if not Path(exe).exists():
            raise OperatorError(
                "gcp-storage-emulator is not installed; run `pip install -e .[dev]`"
            )
        return [
            exe,
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.infra.gcs_port),
            "--default-bucket",
            self.infra.gcs_bucket,
            "--quiet",
        ]

    def start(self, timeout: float = 30.0) -> int:
        if (pid := processes.read_pid(self.pid_file)) is not None:
            return pid
        self.home.mkdir(parents=True, exist_ok=True)
        # The emulator keeps its objects under the working directory, so data survives restarts.
        pid = processes.start(
            self._command(), self.pid_file, self.home / "emulator.log", cwd=self.home
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.infra.gcs_endpoint}/storage/v1/b", timeout=1)
                return pid
            except OSError:
                if processes.read_pid(self.pid_file) is None:
                    raise OperatorError(
                        f"the GCS emulator exited; see {self.home / 'emulator.log'}"
                    ) from None
                time.sleep(0.2)
        raise OperatorError(f"the GCS emulator did not answer within {timeout:.0f}s")

    def stop(self) -> bool:
        return processes.stop(self.pid_file, grace_seconds=5)

    def status(self) -> str:
        pid = processes.read_pid(self.pid_file)
        return "gcs emulator: " + (
            f"running (pid {pid}), {self.infra.gcs_endpoint}" if pid else "stopped"
        )
