"""Figure a: each stage's real service draining a backlog, over its floor (bench/floors.py).

One pipeline prefix carries the chain: the producer's replay fills raw, the validator drains raw
into validated + error, the loader drains validated into the warehouse, the stager drains raw +
error into the bucket. Each floor runs just before its stage, on the same topic and events.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench import floors
from bench.environment import Environment
from bench.report import Figure
from bench.service_process import Drained, Samples, ServiceProcess, labelled
from headrace.dev.infra.ports import free_port_block
from headrace.kafka.topics import Topics
from headrace.runtime.settings import CommonSettings
from services.producer.runner import replay

EVENTS_OUT = "headrace_events_out_total"
TARGET = 0.8


@dataclass
class StageResults:
    common: CommonSettings  # its raw topic holds the backlog, for the framework comparisons
    figures: list[Figure] = field(default_factory=list)
    rates: dict[str, float] = field(default_factory=dict)


def _figures(stage: str, run: Drained, floor: Drained, notes: str) -> list[Figure]:
    """Wall-clock events/s over the floor's, and the same per CPU-second (robust to neighbours)."""
    extra = {
        "events": run.events,
        "seconds": run.seconds,
        "cpu_seconds": run.cpu_seconds,
        "floor_events": floor.events,
        "floor_seconds": floor.seconds,
        "floor_cpu_seconds": floor.cpu_seconds,
    }
    return [
        Figure(
            key=f"stage.{stage}",
            label=f"{stage} throughput",
            unit="ev/s",
            value=run.rate,
            baseline=floor.rate,
            baseline_label="bare client",
            goal="ratio_at_least",
            target=TARGET,
            notes=notes,
            extra=extra,
        ),
        Figure(
            key=f"stage.{stage}.cpu",
            label=f"{stage} events per CPU-second",
            unit="ev/cpu-s",
            value=run.cpu_rate,
            baseline=floor.cpu_rate,
            baseline_label="bare client",
            goal="ratio_at_least",
            target=TARGET,
            notes=notes,
            extra=extra,
        ),
    ]


def _run_service(
    service: str, common: CommonSettings, home: Path, expected: int, timeout: float
) -> tuple[Drained, Samples]:
    proc = ServiceProcess(service, common, home, free_port_block(1))
    proc.start()
    return proc.drain_events(expected, timeout)


def run(env: Environment, sample: Path, events: int, counts: Counter[str]) -> StageResults:
    common = env.pipeline_settings("stages")
    topics = Topics(common.topic_prefix)
    floor_raw, floor_validated = f"{topics.prefix}.floor-raw", f"{topics.prefix}.floor-validated"
    env.create_topics({floor_raw: 6, floor_validated: 6})
    home = env.work / "stages"
    out = StageResults(common)
    timeout = max(300.0, events / 2_000)  # generous: a stalled stage fails, a slow one is measured

    floor = floors.produce_file(env.bootstrap, sample, floor_raw)
    started, cpu_started = time.monotonic(), time.process_time()
    acked = replay(sample, common, show_progress=False)
    producer_run = Drained(acked, time.monotonic() - started, time.process_time() - cpu_started)
    out.figures += _figures("producer", producer_run, floor, "replay of a JSONL file")

    floor = floors.transactional_copy(
        env.bootstrap, topics.raw, floor_validated, f"{topics.prefix}-floor-validator", events
    )
    validator_run, m = _run_service("validator", common, home, events, timeout)
    valid = int(labelled(m, EVENTS_OUT, service="validator", destination=topics.validated))
    rejected = int(labelled(m, EVENTS_OUT, service="validator", destination=topics.error))
    out.figures += _figures(
        "validator",
        validator_run,
        floor,
        f"{valid:,} valid, {rejected:,} rejected (generator expected {counts['VALID']:,} valid)",
    )

    floor = floors.to_parquet(
        env.bootstrap,
        topics.validated,
        env.work / "floor-parquet",
        f"{topics.prefix}-floor-loader",
        valid,
    )
    loader_run, _ = _run_service("loader", common, home, valid, timeout)
    out.figures += _figures("loader", loader_run, floor, "validated -> DuckLake")

    staged = events + rejected
    floor = floors.to_jsonl(
        env.bootstrap,
        [topics.raw, topics.error],
        env.work / "floor-jsonl",
        f"{topics.prefix}-floor-stager",
        staged,
    )
    stager_run, _ = _run_service("stager", common, home, staged, timeout)
    out.figures += _figures("stager", stager_run, floor, "raw + error -> bucket JSONL")
    out.rates = {f.key: f.value or 0.0 for f in out.figures}
    return out
