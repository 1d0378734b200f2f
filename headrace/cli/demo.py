"""`make demo`: the whole pipeline on a real Kafka broker, a sample file, a report, then stop."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from headrace.cli.report_view import current_counts, render
from headrace.dev.infra import processes
from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.kafka_broker import KafkaBroker
from headrace.dev.local_pipeline import LocalPipeline
from headrace.dev.sample_events import generate
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics, ensure_pipeline_topics
from headrace.lake import warehouse
from headrace.runtime import settings
from headrace.runtime.errors import OperatorError
from headrace.runtime.settings import CommonSettings
from services.producer.runner import replay

DEMO_HOME = Path(".headrace/demo")


def run_demo(console: Console, events: int, port_base: int = 0, timeout: float = 240.0) -> None:
    infra = settings.load(InfraSettings)
    broker = KafkaBroker(infra)
    we_started_broker = processes.read_pid(broker.pid_file) is None
    home = DEMO_HOME.resolve()
    shutil.rmtree(home, ignore_errors=True)  # each demo starts empty; its data stays afterwards
    prefix = f"demo-{int(time.time())}"
    env = {
        "HEADRACE_BOOTSTRAP_SERVERS": infra.bootstrap,
        "HEADRACE_TOPIC_PREFIX": prefix,
        "HEADRACE_BUCKET_URL": str(home / "bucket"),
        "HEADRACE_CATALOG_URL": str(home / "warehouse" / "catalog.sqlite"),
        "HEADRACE_SUMMARIZER_DATA_DIR": str(home / "summarizer"),
        "HEADRACE_LOG_LEVEL": "INFO",
    }
    common = CommonSettings(
        bootstrap_servers=infra.bootstrap,
        topic_prefix=prefix,
        bucket_url=env["HEADRACE_BUCKET_URL"],
        catalog_url=env["HEADRACE_CATALOG_URL"],
    )
    pipeline = LocalPipeline(home, env, port_base=port_base)
    try:
        with console.status(f"starting Kafka {broker.version} (the first run fetches it)"):
            broker.start()
        ensure_pipeline_topics(kafka_clients.admin(infra.bootstrap), Topics(prefix))
        warehouse.migrate(warehouse.connect(common))
        with console.status("starting producer, stager, validator, loader, summarizer"):
            pipeline.start()
            pipeline.wait_ready()
        sample = home / "sample.jsonl"
        with console.status(f"generating {events:,} sample events (about 2% bad)"):
            expected = generate(sample, events)
        console.print(
            f"sample: {sample} ({expected['VALID']:,} valid, {events - expected['VALID']:,} bad)"
        )
        started = time.monotonic()
        replay(sample, common)
        _wait_settled(console, common, pipeline, timeout)
        elapsed = time.monotonic() - started
        counts, summary = current_counts(common)
        render(console, counts, summary)
        console.print(
            f"replay to fully loaded and summarized: {elapsed:.1f}s "
            f"({(counts.events_in or 0) / elapsed:,.0f} events/s)"
        )
        _how_to_query(console, env)
        if not counts.holds:
            raise OperatorError(
                f"the reconciliation does not hold; see the service logs in {home / 'logs'}"
            )
    finally:
        with console.status("stopping the services"):
            pipeline.stop()
        if we_started_broker:
            with console.status("stopping Kafka"):
                broker.stop()


def _wait_settled(
    console: Console, common: CommonSettings, pipeline: LocalPipeline, timeout: float
) -> None:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    deadline = time.monotonic() + timeout
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("loading", total=None)
        while time.monotonic() < deadline:
            counts, _ = current_counts(common)
            progress.update(task, total=counts.events_in, completed=counts.placed)
            if counts.settled:
                return
            dead = [
                s for s in ("stager", "validator", "loader", "summarizer") if not pipeline.alive(s)
            ]
            if dead:
                raise OperatorError(f"{', '.join(dead)} stopped; see {pipeline.home / 'logs'}")
            time.sleep(1)
    raise OperatorError(
        f"the pipeline did not settle within {timeout:.0f}s; see {pipeline.home / 'logs'}"
    )


def _how_to_query(console: Console, env: dict[str, str]) -> None:
    console.print("\n[bold]Query the warehouse[/] (the demo's data stays in .headrace/demo):")
    console.print(
        f"  export HEADRACE_CATALOG_URL={env['HEADRACE_CATALOG_URL']}\n"
        f"  export HEADRACE_BUCKET_URL={env['HEADRACE_BUCKET_URL']}\n"
        f'  {_headrace_command()} sql "SELECT year, customer_region, count(*) AS txns, '
        'sum(amount) AS amount FROM transaction_view GROUP BY ALL ORDER BY ALL"\n'
        "  # or in Python: "
        "headrace.lake.warehouse.connect(CommonSettings(), read_only=True).sql(...)",
        highlight=False,
        soft_wrap=True,
    )


def _headrace_command() -> str:
    """The `headrace` script of this environment (.venv/bin in a checkout, any venv once
    installed), so the hint can be pasted as it is."""
    return str(Path(sys.executable).parent / "headrace")
