"""Figures c, d, e: the whole pipeline, as five service processes on one broker.

c. End to end on a backlog: the producer replays the sample file (as `headrace replay`, its own
   process) into a running pipeline; events/s from the replay's start to the moment the last
   valid event is a row the warehouse answers a query with. Baseline: the bare client's rate of
   writing the same file to Kafka (the producer floor of figure a), which no pipeline can beat.
e. Peak RSS of every service while it drains that backlog: VmHWM from /proc/<pid>/status,
   sampled twice a second (the peak of a process that restarted would otherwise be lost), against
   its resident set when it was ready and idle (bench/memory.py).
d. Freshness under steady offered load, right after (the warehouse then holds the backlog, as a
   warehouse in service does): events produced to raw at a fixed rate, each one's latency from
   produce() to being returned by a query on transaction_view. Baseline: the same events' latency
   from produce() to a plain consumer of raw, one Kafka hop (bench/freshness.py).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import duckdb

from bench import freshness
from bench.environment import Environment
from bench.memory import MemorySampler
from bench.report import Figure
from bench.service_process import labelled, memory_kib, run_module, scrape
from headrace.dev.infra.ports import free_port_block
from headrace.dev.local_pipeline import SERVICES, LocalPipeline, settings_env
from headrace.kafka.topics import Topics
from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings

E2E_TARGET = 100_000.0


def fact_rows(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT count(*) FROM transaction_fact").fetchone()
    return int(row[0]) if row else 0


def wait_drained(
    pipeline: LocalPipeline,
    con: duckdb.DuckDBPyConnection,
    common: CommonSettings,
    events: int,
    sampler: MemorySampler,
    restarts: Counter[str],
    timeout: float,
) -> int:
    """Wait until the validator has seen every event and every valid one is a fact row.

    A service that exits is started again, as its supervisor (Kubernetes) would: a service that
    cannot make progress exits by design (its watchdog), and the restart is counted.
    """
    raw = Topics(common.topic_prefix).raw
    validated = Topics(common.topic_prefix).validated
    deadline = time.monotonic() + timeout
    seen = 0.0
    while True:
        for s in SERVICES:
            if not pipeline.alive(s):
                restarts[s] += 1
                sampler.pids[s] = pipeline.start_instance(s)
        try:
            m = scrape(pipeline.port("validator"))
            seen = labelled(m, "headrace_events_in_total", service="validator", topic=raw)
        except OSError:  # restarting
            m = {}
        if m and seen >= events:
            valid = int(labelled(m, "headrace_events_out_total", destination=validated))
            if fact_rows(con) >= valid:
                return valid
        if time.monotonic() > deadline:
            raise TimeoutError(f"pipeline: validator saw {seen:,.0f} of {events:,} in {timeout}s")
        time.sleep(0.1)


def run(
    env: Environment,
    sample: Path,
    events: int,
    producer_floor: float | None,
    freshness_rate: int,
    freshness_seconds: float,
) -> list[Figure]:
    common = env.pipeline_settings("e2e")
    home = env.work / "e2e"
    penv = settings_env(common, home)
    pipeline = LocalPipeline(home, penv, port_base=free_port_block())
    figures: list[Figure] = []
    try:
        pipeline.start()
        pipeline.wait_ready()
        pids = {s: int((pipeline.pid_file(s)).read_text()) for s in SERVICES}
        idle = {s: memory_kib(pid).get("VmRSS", 0) for s, pid in pids.items()}
        sampler = MemorySampler(dict(pids))
        sampler.start()
        con = warehouse.connect(common, read_only=True)
        started = time.monotonic()
        replay = run_module(
            ["-m", "headrace", "replay", str(sample)], penv, home / "logs" / "replay.log"
        )
        sampler.pids["producer replay"] = replay.pid
        restarts: Counter[str] = Counter()
        valid = wait_drained(pipeline, con, common, events, sampler, restarts, 600 + events / 2_000)
        seconds = time.monotonic() - started
        sampler.stop()
        replay.wait(60)
        if replay.returncode != 0:
            raise RuntimeError(f"replay exited {replay.returncode}; see {home / 'logs'}")
        figures.append(
            Figure(
                key="e2e.backlog",
                label="end to end on a backlog",
                unit="ev/s",
                value=events / seconds,
                baseline=producer_floor,
                baseline_label="bare client produce",
                goal="value_at_least",
                target=E2E_TARGET,
                notes=f"{events:,} events ({valid:,} valid) replayed -> last row queryable"
                + (f"; restarted: {dict(restarts)}" if restarts else ""),
                extra={
                    "events": events,
                    "valid": valid,
                    "seconds": seconds,
                    "restarts": dict(restarts),
                },
            )
        )
        for name, peak in sorted(sampler.peak_kib.items()):
            figures.append(
                Figure(
                    key=f"rss.{name.replace(' ', '_')}",
                    label=f"peak RSS {name}",
                    unit="MiB",
                    value=peak / 1024,
                    baseline=idle[name] / 1024 if name in idle else None,
                    baseline_label="ready, idle",
                    notes=f"VmHWM while draining {events:,} events",
                )
            )
        try:  # the backlog's figures above stand even if the freshness measurement fails
            figures += freshness.run(common, con, events + 1, freshness_rate, freshness_seconds)
        except Exception as exc:
            for q in (50, 99):
                figures.append(Figure(f"freshness.p{q}", f"freshness p{q}", "s", error=f"{exc!r}"))
        con.close()
    finally:
        pipeline.stop()
    return figures
