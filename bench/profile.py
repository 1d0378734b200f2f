"""Where the validator's and the loader's time goes: each drains a backlog under cProfile.

    .venv/bin/python -m bench.profile [--events 500000] [--top 25] [--root .headrace/bench]

A broker of its own, the sample events replayed into raw, then the validator service run as
`python -m cProfile -o FILE -m services.validator` until it has consumed everything, stopped with
SIGTERM (the service exits its loop normally, so cProfile writes its file); then the loader on
the validated topic the same way. Prints the top functions by own time and by cumulative time.
cProfile slows Python-level calls, so use it for where the time goes, never for throughput.
"""

from __future__ import annotations

import argparse
import io
import pstats
import shutil
from pathlib import Path

from bench import workload
from bench.environment import environment
from bench.service_process import Samples, ServiceProcess, labelled
from headrace.dev.infra.ports import free_port_block
from headrace.kafka.topics import Topics
from headrace.runtime.settings import CommonSettings
from services.producer.runner import replay


def profile_service(
    service: str, common: CommonSettings, home: Path, expected: int, out: Path
) -> Samples:
    """Drain `expected` events with the service under cProfile; its metrics at the end."""
    proc = ServiceProcess(
        service, common, home, free_port_block(1), python_args=("-m", "cProfile", "-o", str(out))
    )
    proc.start()
    run, metrics = proc.drain_events(expected, timeout=1800)
    print(f"{service}: {run.events:,} events in {run.seconds:.1f} s under cProfile")
    return metrics


def top(path: Path, n: int) -> str:
    text = io.StringIO()
    stats = pstats.Stats(str(path), stream=text)
    stats.strip_dirs()
    for key in ("tottime", "cumulative"):
        text.write(f"\n=== {path.stem}: top {n} by {key} ===\n")
        stats.sort_stats(key).print_stats(n)
    return text.getvalue()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=500_000)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--root", type=Path, default=Path(".headrace/bench"))
    args = p.parse_args()
    root = args.root.resolve()
    profiles = root / "profiles"
    shutil.rmtree(profiles, ignore_errors=True)
    profiles.mkdir(parents=True)
    with environment(root) as env:
        sample, _ = workload.sample_file(env.data, args.events)
        common = env.pipeline_settings("profile")
        topics = Topics(common.topic_prefix)
        replay(sample, common, show_progress=False)
        home = env.work / "profile"
        m = profile_service("validator", common, home, args.events, profiles / "validator.prof")
        valid = int(labelled(m, "headrace_events_out_total", destination=topics.validated))
        profile_service("loader", common, home, valid, profiles / "loader.prof")
    for name in ("validator", "loader"):
        report = top(profiles / f"{name}.prof", args.top)
        (profiles / f"{name}.txt").write_text(report)
        print(report)
    print(f"profiles: {profiles}")


if __name__ == "__main__":
    main()
