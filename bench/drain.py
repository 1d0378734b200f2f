"""Peak RSS and rate of each consumer service draining a backlog alone, under setting variants.

    .venv/bin/python -m bench.drain [--events 1000000]
        [--services validator,stager,loader,summarizer]
        [--variant '{"HEADRACE_STAGER_BATCH_MAX_MESSAGES": "20000"}' ...] [--root DIR]
        [--memray DIR]

A broker of its own and the sample events replayed into raw once; then, for each variant (the
environment it adds to the services; none: the defaults), each service in turn drains what the
one before it left: the validator raw, the stager raw + error, the loader validated, the
summarizer every load batch in the warehouse (read at start-up, as after a restart). Each variant
gets its own consumer groups, bucket and catalog. Prints one line per run: events/s, events per
CPU-second and the peak RSS (VmHWM). For where memory goes, not for the headline figures (those
are `python -m bench`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import workload
from bench.environment import environment
from bench.memory import MemorySampler
from bench.service_process import Samples, ServiceProcess, labelled
from headrace.dev.infra.ports import free_port_block
from headrace.kafka.topics import Topics
from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings
from services.producer.runner import replay


def drain(
    service: str,
    common: CommonSettings,
    home: Path,
    expected: int,
    env: dict[str, str],
    memray_to: Path | None = None,
) -> tuple[Samples, str]:
    """Run `service` until it has taken `expected` events; its last metrics and a report.

    With `memray_to`, the service runs under memray's native tracker, writing there (memray's
    own bookkeeping then shows in the peak).
    """
    args = ("-m", "memray", "run", "--native", "-q", "-o", str(memray_to)) if memray_to else ()
    proc = ServiceProcess(
        service, common, home, free_port_block(1), extra_env=env, python_args=args
    )
    sampler = MemorySampler({service: proc.start()})
    sampler.start()
    try:
        run, metrics = proc.drain_events(expected, timeout=1800)
    finally:
        sampler.stop()
    report = (
        f"{service:9s} {run.rate:9,.0f} ev/s {run.cpu_rate:9,.0f} ev/cpu-s "
        f"peak {sampler.peak_kib[service] // 1024:5d} MiB"
    )
    return metrics, report


def _load_batches(common: CommonSettings) -> int:
    """Every load batch in the warehouse: what a summarizer started on it has to summarize."""
    con = warehouse.connect(common)
    try:
        (n,) = con.execute("SELECT count(*) FROM load_batch").fetchone() or (0,)
        return int(n)
    finally:
        con.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--services", default="validator,stager,loader")
    p.add_argument("--variant", action="append", default=[], help="JSON object of env settings")
    p.add_argument("--root", type=Path, default=Path(".headrace/bench-drain"))
    p.add_argument(
        "--memray",
        type=Path,
        default=None,
        help="folder for a memray capture per service and variant (memray tree/flamegraph)",
    )
    args = p.parse_args()
    variants = [json.loads(v) for v in args.variant] or [{}]
    services = args.services.split(",")
    with environment(args.root.resolve()) as env:
        sample, _ = workload.sample_file(env.data, args.events)
        base = env.pipeline_settings("drain")
        topics = Topics(base.topic_prefix)
        replay(sample, base, show_progress=False)
        valid = rejected = None
        for i, variant in enumerate(variants):
            home = env.work / f"variant{i}"
            common = base.model_copy(
                update={
                    "bucket_url": str(home / "bucket"),
                    "catalog_url": str(home / "warehouse" / "catalog.sqlite"),
                }
            )
            con = warehouse.connect(common)
            warehouse.migrate(con)
            con.close()
            print(f"variant {i}: {variant or 'defaults'}")
            for service in services:
                groups = {f"HEADRACE_{service.upper()}_GROUP_ID": f"drain{i}-{service}"}
                if service == "summarizer":  # it counts load batches, not events
                    expected = _load_batches(common)
                else:
                    expected = {
                        "validator": args.events,
                        "stager": args.events + (rejected or 0),
                        "loader": valid if valid is not None else args.events,
                    }[service]
                settings = {**groups, **{k: str(v) for k, v in variant.items()}}
                capture = None
                if args.memray:
                    args.memray.mkdir(parents=True, exist_ok=True)
                    capture = args.memray.resolve() / f"{service}-variant{i}.bin"
                    capture.unlink(missing_ok=True)
                m, report = drain(service, common, home, expected, settings, capture)
                print(f"  {report}", flush=True)
                if service == "validator" and valid is None:
                    out = "headrace_events_out_total"
                    valid = int(labelled(m, out, service=service, destination=topics.validated))
                    rejected = int(labelled(m, out, service=service, destination=topics.error))


if __name__ == "__main__":
    main()
