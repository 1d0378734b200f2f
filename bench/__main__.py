"""python -m bench: every figure of the benchmark suite, a table of verdicts, a JSON result.

    .venv/bin/python -m bench [--scale smoke|full] [--only stages,e2e,backfill,...] [--out FILE]

Sizes come from the scale (bench/scale.py; BENCH_SCALE, BENCH_<FIELD> overrides). A Kafka broker
of the run's own is started on free ports and stopped at the end (BENCH_BOOTSTRAP: use one that
runs already). Exit status 1 when a figure could not be measured; missed targets are reported,
not failed on (the numbers guide the performance work; CI checks that they are produced).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from bench import backfill, end_to_end, frameworks, queries, stages, workload
from bench.environment import Environment, environment
from bench.report import Figure, render, write_json
from bench.scale import Scale, from_env
from headrace.runtime.errors import OperatorError

SECTIONS = ("stages", "versus", "e2e", "backfill", "queries")
DEFAULT_ROOT = Path(".headrace/bench")
T = TypeVar("T")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", choices=("smoke", "full"), default=None)
    p.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="work and data folder")
    p.add_argument("--out", type=Path, default=None, help="JSON result (default ROOT/result.json)")
    p.add_argument("--keep", action="store_true", help="keep the run's topics, buckets, logs")
    args = p.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the broker and services started here are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    scale = from_env(args.scale)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        p.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    root = args.root.resolve()
    out = args.out or root / "result.json"
    console = Console()
    started, started_at = time.monotonic(), datetime.now(UTC)
    meta: dict[str, object] = {
        "scale": asdict(scale),
        "sections": only,
        "started_at": started_at.isoformat(),
        "command": " ".join(sys.argv),
    }

    def save(figures: list[Figure], complete: bool) -> None:
        # Written after every section too, so a long run that dies late keeps what it measured.
        meta.update(seconds=round(time.monotonic() - started, 1), complete=complete)
        write_json(out, figures, meta)

    figures = run(console, scale, only, root, lambda f: save(f, complete=False))
    if not args.keep:
        shutil.rmtree(root / "run", ignore_errors=True)
    save(figures, complete=True)
    render(console, figures, f"headrace bench ({scale.name}, {meta['seconds']:.0f} s)")
    console.print(f"result: {out}")
    return 1 if any(f.error for f in figures) else 0


def run(
    console: Console,
    scale: Scale,
    only: list[str],
    root: Path,
    checkpoint: Callable[[list[Figure]], None],
) -> list[Figure]:
    figures: list[Figure] = []
    with environment(root) as env:
        console.log(f"broker {env.bootstrap}; work folder {env.work}")
        stage_results: stages.StageResults | None = None
        sample, counts = workload.sample_file(env.data, scale.stage_events)
        if "stages" in only or "versus" in only:
            console.log(f"stages: {scale.stage_events:,} events")
            stage_results = _section(
                figures, "stages", lambda: stages.run(env, sample, scale.stage_events, counts)
            )
            if stage_results is not None:
                figures += stage_results.figures
            checkpoint(figures)
        if "versus" in only and stage_results is not None:
            console.log("versus: faust, quixstreams")
            samples = {"faust": scale.faust_events, "quix": scale.quix_events}
            figures += (
                _section(
                    figures,
                    "versus",
                    lambda: frameworks.run(env, stage_results.common, stage_results.rates, samples),
                )
                or []
            )
            checkpoint(figures)
        if "e2e" in only:
            console.log(f"e2e: {scale.e2e_events:,} events, then freshness")
            # The bare client's rate of writing the file to Kafka bounds any pipeline's.
            floor_fig = next((f for f in figures if f.key == "stage.producer"), None)
            floor = floor_fig.baseline if floor_fig else None
            figures += _section(figures, "e2e", lambda: _e2e(env, scale, floor)) or []
            checkpoint(figures)
        if "backfill" in only:
            console.log(f"backfill: {scale.backfill_events:,} events over ten years")
            backlog = next((f for f in figures if f.key == "e2e.backlog"), None)
            rate = backlog.value if backlog else None
            figures += (
                _section(
                    figures, "backfill", lambda: backfill.run(env, scale.backfill_events, rate)
                )
                or []
            )
            checkpoint(figures)
        if "queries" in only:
            console.log(f"queries at {', '.join(f'{n:,}' for n in scale.query_rows)} fact rows")
            figures += (
                _section(
                    figures,
                    "queries",
                    lambda: queries.run(
                        env.work / "queries",
                        scale.query_rows,
                        scale.query_days,
                        scale.query_accounts,
                    ),
                )
                or []
            )
    return figures


def _e2e(env: Environment, scale: Scale, floor: float | None) -> list[Figure]:
    sample, _ = workload.sample_file(env.data, scale.e2e_events)
    return end_to_end.run(
        env, sample, scale.e2e_events, floor, scale.freshness_rate, scale.freshness_seconds
    )


def _section(figures: list[Figure], name: str, work: Callable[[], T]) -> T | None:
    """Run one section; a failure becomes an error figure and the other sections still run."""
    try:
        return work()
    except Exception as exc:
        traceback.print_exc()
        figures.append(Figure(key=name, label=name, unit="", error=f"{type(exc).__name__}: {exc}"))
        return None


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OperatorError as exc:  # no broker, a port taken...: one line that says what to do
        print(f"bench: error: {exc}", file=sys.stderr)
        sys.exit(2)
