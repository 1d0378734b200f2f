"""A real service (python -m services.<name>) run as its own process, watched from outside.

Progress is read from the service's own Prometheus counter `headrace_events_in_total`, which
each consuming service increments only after a batch is committed (Kafka transaction, warehouse
transaction or offset commit): a count there is work done for good, and the count reaching the
backlog's size is the moment its consumer group's lag is 0. Memory is read from /proc.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from headrace.dev.infra import processes
from headrace.dev.local_pipeline import settings_env
from headrace.runtime import registry
from headrace.runtime.settings import CommonSettings

SERVICE_PORT_ENV = "HEADRACE_{}_PORT"
# Counts only committed batches: a service has drained a backlog when it reaches the backlog.
EVENTS_IN = "headrace_events_in_total"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> Samples:
    """Every sample of a service's /metrics, keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def counter(samples: Samples, name: str) -> float:
    """Sum of a metric's samples over all label values."""
    return sum(v for (n, _), v in samples.items() if n == name)


def labelled(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= set(ls))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident set) of a process, in KiB; empty once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return {}
    found = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(rest.split()[0])
    return found


@dataclass
class Drained:
    """Events done in `seconds` of wall time (and `cpu_seconds` of the worker's CPU time).

    On a shared machine wall time also measures the neighbours; CPU time (user + system of
    every thread of the process, librdkafka's included) mostly does not, so both are kept.
    """

    events: int
    seconds: float
    cpu_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_rate(self) -> float:
        return self.events / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


@dataclass
class ServiceProcess:
    service: str
    common: CommonSettings
    home: Path
    port: int
    extra_env: dict[str, str] = field(default_factory=dict)
    python_args: tuple[str, ...] = ()  # e.g. ("-m", "cProfile", "-o", path) to profile it
    pid: int | None = None

    @property
    def pid_file(self) -> Path:
        return self.home / "pids" / f"{self.service}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"{self.service}.log"

    def start(self) -> int:
        env = {
            **settings_env(self.common, self.home),
            SERVICE_PORT_ENV.format(self.service.upper()): str(self.port),
            "HEADRACE_INSTANCE_ID": f"{self.common.topic_prefix}-{self.service}",
            **self.extra_env,
        }
        cmd = [sys.executable, *self.python_args, "-m", registry.service(self.service).package]
        self.pid = processes.start(cmd, self.pid_file, self.log_file, env=env, cwd=Path.cwd())
        return self.pid

    def alive(self) -> bool:
        return processes.read_pid(self.pid_file) is not None

    def stop(self) -> None:
        processes.stop(self.pid_file, grace_seconds=30)

    def metrics(self) -> Samples:
        return scrape(self.port)

    def _check_alive(self) -> None:
        if not self.alive():
            tail = self.log_file.read_text()[-1500:] if self.log_file.exists() else ""
            raise RuntimeError(f"{self.service} exited; log tail:\n{tail}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def drain_events(self, expected: int, timeout: float) -> tuple[Drained, Samples]:
        """`drain` on the service's committed-events counter, then stop it (whatever happened):
        the run and the service's last metrics."""
        try:
            run = self.drain(
                expected, lambda m: labelled(m, EVENTS_IN, service=self.service), timeout
            )
            return run, self.metrics()
        finally:
            self.stop()

    def drain(self, expected: int, progress: Callable[[Samples], float], timeout: float) -> Drained:
        """Time from partitions assigned (/readyz) until `progress(metrics)` reaches `expected`.

        Start-up (imports, clients, the group join) is not counted: a long-running service pays
        it once. Readiness is polled every 20 ms, so the clock starts at most that late.
        """
        deadline = time.monotonic() + timeout
        while not self.ready():
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.service} never got partitions; see {self.log_file}")
            time.sleep(0.02)
        assert self.pid is not None
        started, cpu_started = time.monotonic(), cpu_seconds(self.pid)
        done = 0.0
        while done < expected:
            time.sleep(0.05)
            try:
                done = progress(self.metrics())
            except OSError:
                self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.service} did {done:,.0f} of {expected:,} events in {timeout:.0f}s"
                )
        seconds = time.monotonic() - started
        return Drained(int(done), seconds, cpu_seconds(self.pid) - cpu_started)


def run_module(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start `python <args>` with extra environment, its output to `log` (for child programs)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
            cwd=Path.cwd(),
            start_new_session=True,
        )
