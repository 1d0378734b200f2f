"""Figure b: the validator against the same job written with faust-streaming and Quix Streams.

Each comparison program (bench/faust_validator.py, bench/quix_validator.py) runs as its own
process on the stage benchmark's raw backlog (same broker, same events) with a consumer group of
its own, over a bounded sample (faust manages a few thousand events/s), and reports events/s
between its first and last event. The figure is the validator service's throughput from figure a
over that rate.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from bench.comparison_result import Progress, read
from bench.environment import Environment
from bench.report import Figure
from bench.service_process import run_module
from headrace.kafka.topics import Topics
from headrace.runtime.settings import CommonSettings

TARGETS = {"faust": 50.0, "quix": 3.0}
LABELS = {"faust": "faust-streaming 0.15.3 agent", "quix": "Quix Streams app"}


def measure(env: Environment, common: CommonSettings, framework: str, events: int) -> Progress:
    """How the comparison program did over `events` events of the raw backlog."""
    prefix = Topics(common.topic_prefix).prefix
    sinks = {
        "validated": f"{prefix}.{framework}-validated",
        "errors": f"{prefix}.{framework}-error",
    }
    env.create_topics({sinks["validated"]: 6, sinks["errors"]: 3})
    home = env.work / framework
    home.mkdir(parents=True, exist_ok=True)
    result = home / "result.json"
    state = "--datadir" if framework == "faust" else "--state-dir"
    args = [
        "-m", f"bench.{framework}_validator",
        "--bootstrap", env.bootstrap,
        "--source", Topics(prefix).raw,
        "--validated", sinks["validated"],
        "--errors", sinks["errors"],
        "--group", f"{prefix}-{framework}",
        "--events", str(events),
        "--result", str(result),
        state, str(home / "state"),
    ]  # fmt: skip
    child = run_module(args, {}, home / "log.txt")
    # faust can take minutes to join its group on a busy machine (seen: coordinator retries).
    deadline = time.monotonic() + 300 + events / 200
    try:
        while not result.exists():
            if child.poll() is not None:
                tail = (home / "log.txt").read_text()[-1500:]
                raise RuntimeError(f"{framework} program exited ({child.returncode}):\n{tail}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{framework} program did not process {events:,} events")
            time.sleep(0.2)
    finally:
        _stop(child.pid)
        with contextlib.suppress(Exception):
            child.wait(10)
    return read(result)


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def figures(framework: str, validator: dict[str, float], run: Progress | None) -> list[Figure]:
    """The validator's events/s over the program's, by wall clock and per CPU-second."""
    notes = f"{framework} over a {run.count if run else 0:,}-event sample, same checks and broker"
    return [
        Figure(
            key=f"versus.{framework}{suffix}",
            label=f"validator vs {LABELS[framework]}{label}",
            unit=unit,
            value=validator.get(f"stage.validator{suffix}"),
            baseline=(run.rate if suffix == "" else run.cpu_rate) if run else None,
            baseline_label=framework,
            goal="ratio_at_least",
            target=TARGETS[framework],
            notes=notes,
            extra={"sample_events": run.count} if run else {},
        )
        for suffix, label, unit in (("", "", "ev/s"), (".cpu", ", per CPU-s", "ev/cpu-s"))
    ]


def run(
    env: Environment, common: CommonSettings, validator: dict[str, float], samples: dict[str, int]
) -> list[Figure]:
    out = []
    for framework, events in samples.items():
        try:
            out += figures(framework, validator, measure(env, common, framework, events))
        except Exception as exc:  # one failed comparison must not lose the others
            failed = figures(framework, validator, None)
            for f in failed:
                f.error = f"{type(exc).__name__}: {exc}"
            out += failed
    return out
