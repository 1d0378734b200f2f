"""What the tests' real Prometheus and Alertmanager share: a process on 127.0.0.1 with a log, its
HTTP API, waiting for it, stopping it."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path


class LocalServer:
    """Mixed into a server class that sets `home`, `port` and `process`, and names itself."""

    NAME = ""
    home: Path
    port: int
    process: subprocess.Popen[bytes] | None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.NAME}.log"

    def launch(self, cmd: list[str]) -> None:
        """Start `cmd` with its output in the log, then wait until /-/ready answers."""
        log = self.log_file.open("wb")
        self.process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.wait(lambda: self._get("/-/ready") is not None, f"{self.NAME} ready", 30)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def wait(self, ready: Callable[[], object], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.process is not None and self.process.poll() is not None:
                log = self.log_file.read_text()[-2000:]
                raise AssertionError(f"{self.NAME} exited: {log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout:.0f}s for {what}")
            time.sleep(0.5)

    def _get(self, path: str) -> bytes | None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                data: bytes = r.read()
                return data
        except OSError:
            return None
