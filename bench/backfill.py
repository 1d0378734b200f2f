"""Figure g: a backfill, years of history replayed at once, as a new user's first load is.

The sample's events spread over ten years (every day of them), replayed into the five services
with default settings. Figures: events/s from the replay's start to the last valid event
queryable, against the backlog of recent events of figure c when it ran; the loader's peak RSS
(VmHWM) against its idle RSS, bounded by the loader's memory limit in deploy/k8s (1 GiB); and the
fact files written per 100,000 rows, against the days those rows span (what one file per day
partition would write at the least).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from bench.end_to_end import wait_drained
from bench.environment import Environment
from bench.memory import MemorySampler
from bench.report import Figure
from bench.service_process import memory_kib, run_module
from headrace.dev.infra.ports import free_port_block
from headrace.dev.local_pipeline import SERVICES, LocalPipeline, settings_env
from headrace.dev.sample_events import generate
from headrace.lake import warehouse

YEARS = 10
LOADER_MEMORY_LIMIT_MIB = 1024.0  # deploy/k8s/base: the loader's memory limit
FILES_PER_100K_TARGET = 64.0  # two full batches' worth of HEADRACE_LOADER_MAX_PARTITIONS_PER_BATCH


def sample(data: Path, events: int) -> Path:
    path = data / f"backfill-{events}-{YEARS}y.jsonl"
    if not path.exists():
        partial = path.with_suffix(".partial")
        now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        generate(partial, events, bad_ratio=0.0, seed=23, now=now, days=YEARS * 365)
        partial.replace(path)
    return path


def run(env: Environment, events: int, backlog_rate: float | None) -> list[Figure]:
    path = sample(env.data, events)
    common = env.pipeline_settings("backfill")
    home = env.work / "backfill"
    penv = settings_env(common, home)
    pipeline = LocalPipeline(home, penv, port_base=free_port_block())
    try:
        pipeline.start()
        pipeline.wait_ready()
        loader_pid = int(pipeline.pid_file("loader").read_text())
        idle = memory_kib(loader_pid).get("VmRSS", 0) / 1024
        sampler = MemorySampler({s: int(pipeline.pid_file(s).read_text()) for s in SERVICES})
        sampler.start()
        con = warehouse.connect(common, read_only=True)
        started = time.monotonic()
        replay = run_module(["-m", "headrace", "replay", str(path)], penv, home / "logs" / "r.log")
        restarts: Counter[str] = Counter()
        valid = wait_drained(pipeline, con, common, events, sampler, restarts, 600 + events / 500)
        seconds = time.monotonic() - started
        sampler.stop()
        replay.wait(60)
        files, days = con.execute(
            """SELECT (SELECT count(*) FROM ducklake_list_files('lake', 'transaction_fact')),
                      (SELECT count(DISTINCT time_id) FROM transaction_fact)"""
        ).fetchone() or (0, 0)
        con.close()
    finally:
        pipeline.stop()
    per_100k = 100_000 / max(valid, 1)
    restarted = f"; restarted: {dict(restarts)}" if restarts else ""
    return [
        Figure(
            key="backfill.rate",
            label=f"backfill of {YEARS} years",
            unit="ev/s",
            value=events / seconds,
            baseline=backlog_rate,
            baseline_label="backlog of recent events (c)",
            goal="ratio_at_least" if backlog_rate else "none",
            target=0.5 if backlog_rate else None,
            notes=f"{events:,} events over {days:,} days, replayed -> last row queryable in "
            f"{seconds:.0f} s{restarted}",
            extra={"events": events, "valid": valid, "seconds": seconds, "days": days},
        ),
        Figure(
            key="backfill.rss_loader",
            label="backfill peak RSS loader",
            unit="MiB",
            value=sampler.peak_kib.get("loader", 0) / 1024,
            baseline=idle,
            baseline_label="ready, idle",
            goal="value_at_most",
            target=LOADER_MEMORY_LIMIT_MIB,
            notes="VmHWM while loading the backfill, default HEADRACE_MEMORY_BUDGET_MB",
        ),
        Figure(
            key="backfill.files_per_100k",
            label="backfill fact files per 100k rows",
            unit="files",
            value=files * per_100k,
            baseline=days * per_100k,
            baseline_label="days spanned (one file per day)",
            goal="value_at_most",
            target=FILES_PER_100K_TARGET,
            notes=f"{files:,} fact files for {valid:,} rows",
        ),
    ]
