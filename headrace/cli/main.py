"""The `headrace` command: run a service, replay files, local infrastructure, the demo."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.console import Console

from headrace.runtime import registry
from headrace.runtime.errors import OperatorError, exit_on_operator_error

if TYPE_CHECKING:
    from headrace.rejections.select import Selection
    from headrace.runtime.settings import CommonSettings

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False
)
infra_app = typer.Typer(
    no_args_is_help=True, help="Local Kafka broker, GCS emulator and PostgreSQL catalog."
)
app.add_typer(infra_app, name="infra")
stack_app = typer.Typer(
    no_args_is_help=True,
    help="docker-compose.yml's components as local processes, without Docker.",
)
app.add_typer(stack_app, name="stack")

WHOLE_WIDTH = 1_000  # wide enough for any row of the reports; tables take no more than they need


def make_console(file: TextIO | None = None) -> Console:
    """A console whose tables fit the terminal, or print whole when there is none.

    Without a terminal (a pipe, a file, CI) rich assumes 80 columns and folds or cuts the cells
    (reason codes, file names) of any wider table; COLUMNS, when set, still decides. Without
    `file` it writes to whatever sys.stdout is at the time, as rich does.
    """
    whole = not (file or sys.stdout).isatty() and "COLUMNS" not in os.environ
    return Console(file=file, width=WHOLE_WIDTH if whole else None)


console = make_console()


def run_service(name: str) -> None:
    """Run one service in this process until SIGTERM."""
    registry.service(name).main()()


@app.command()
def run(service: Annotated[str, typer.Argument(help=" | ".join(registry.NAMES))]) -> None:
    """Run a service (settings from HEADRACE_* environment variables)."""
    run_service(service)


@app.command()
def replay(
    files: Annotated[list[Path], typer.Argument(help="CSV, JSONL, Parquet or Avro files.")],
    rate: Annotated[float, typer.Option(help="Most events per second (0: no limit).")] = 0.0,
    ack_log: Annotated[
        Path | None, typer.Option(help="Append `partition offset` of every acknowledged event.")
    ] = None,
) -> None:
    """Publish every row of the files to the raw topic."""
    from headrace.runtime import settings
    from headrace.runtime.settings import CommonSettings
    from services.producer.runner import replay as replay_file

    common = settings.load(CommonSettings)
    for f in files:
        acked = replay_file(f, common, rate, ack_log=ack_log)
        console.print(f"{f}: {acked:,} events acknowledged on {common.topic_prefix}.raw")


@app.command()
def generate(
    out: Path,
    events: Annotated[int, typer.Option(help="How many events.")] = 200_000,
    bad_ratio: Annotated[float, typer.Option(help="Share of bad events.")] = 0.02,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
) -> None:
    """Write a sample JSONL file of transactions with a share of bad events."""
    from headrace.dev.sample_events import generate as gen

    expected = gen(out, events, bad_ratio, seed)
    console.print(
        f"{out}: {events:,} events; " + ", ".join(f"{k} {v}" for k, v in sorted(expected.items()))
    )


@app.command()
def topics(
    partitions: Annotated[int, typer.Option(help="Partitions of raw/validated.")] = 6,
) -> None:
    """Create the pipeline's topics (those missing) with explicit partitions and replication."""
    from headrace.runtime import settings
    from headrace.runtime.settings import CommonSettings

    common = settings.load(CommonSettings)
    create_topics(common, common.bootstrap_servers, partitions)


def create_topics(common: CommonSettings, bootstrap: str, partitions: int = 6) -> None:
    from headrace.kafka import clients as kafka_clients
    from headrace.kafka.topics import (
        Topics,
        cluster_replication,
        ensure_pipeline_topics,
        fewer_replicas,
    )

    kafka_clients.wait_for_broker(bootstrap)
    admin = kafka_clients.admin(bootstrap)
    replication = cluster_replication(
        admin, common.topic_replication_factor, common.topic_min_insync_replicas
    )
    topics = Topics(common.topic_prefix)
    wanted = topics.partitions(partitions)
    created = ensure_pipeline_topics(admin, topics, partitions, replication)
    console.print(
        f"topics: {', '.join(f'{t}({n})' for t, n in wanted.items())}, "
        f"replication factor {replication.factor}, min.insync.replicas {replication.min_insync}; "
        f"created {len(created)}"
    )
    for name, count in fewer_replicas(admin, wanted, replication.factor).items():
        console.print(
            f"warning: {name} has {count} replica(s), not {replication.factor}: existing topics "
            "keep theirs; raise it with kafka-reassign-partitions (docs/operations.md)"
        )


@app.command()
def report() -> None:
    """Print what landed: events in, fact rows, error zone by reason, reconciliation."""
    from headrace.cli.report_view import print_report

    print_report(console)


@app.command()
def check(
    ack_log: Annotated[
        Path | None, typer.Option(help="The producer's ack log: each line `partition offset`.")
    ] = None,
) -> None:
    """Check the exactly-once invariants on a quiet pipeline; exit 1 on any violation."""
    from headrace.audit.invariants import Checker
    from headrace.lake import warehouse
    from headrace.runtime import settings
    from headrace.runtime.settings import CommonSettings

    common = settings.load(CommonSettings)
    # A catalog that cannot be opened at all is a setting to fix (one line, exit 2), not a
    # violation of I8, which checks that a catalog that opens keeps opening.
    warehouse.connect(common, read_only=True).close()
    verdicts = Checker(common, ack_log).run()
    for v in verdicts:
        mark = "[green]ok[/]  " if v.ok else "[red]FAIL[/]"
        console.print(f"{mark} {v.name}: {v.detail}")
    if not all(v.ok for v in verdicts):
        raise typer.Exit(1)


@app.command()
def lag() -> None:
    """Work each stage has left (from what it made durable); exit 1 unless all are caught up."""
    from headrace.audit.pipeline_lag import Groups, stage_lags
    from headrace.kafka.topics import Topics
    from headrace.lake import warehouse
    from headrace.runtime import settings
    from headrace.runtime.settings import CommonSettings

    common = settings.load(CommonSettings)
    groups = Groups(
        registry.STAGER.group_id(), registry.VALIDATOR.group_id(), registry.LOADER.group_id()
    )
    con = warehouse.connect(common, read_only=True)
    try:
        lags = stage_lags(con, common.bootstrap_servers, Topics(common.topic_prefix), groups)
    finally:
        con.close()
    for x in lags:
        mark = "[green]caught up[/]" if x.pending == 0 else f"[yellow]{x.pending:,} {x.unit}[/]"
        console.print(f"{x.stage:<11} {mark}")
    if any(x.pending for x in lags):
        raise typer.Exit(1)


DayOption = Annotated[
    datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Only this day (UTC, YYYY-MM-DD).")
]
SinceOption = Annotated[
    datetime | None, typer.Option(formats=["%Y-%m-%d"], help="From this day on (inclusive).")
]
UntilOption = Annotated[
    datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Up to this day (inclusive).")
]
ReasonOption = Annotated[
    list[str] | None, typer.Option(help="Reason code (RANGE, TYPE, DUPLICATE, ...); repeatable.")
]
SourceOption = Annotated[
    list[str] | None,
    typer.Option(
        help="Source system, source file (or `http`), topic, or topic/partition; repeatable."
    ),
]


def _selection(
    day: datetime | None,
    since: datetime | None,
    until: datetime | None,
    reason: list[str] | None,
    source: list[str] | None,
) -> Selection:
    from headrace.rejections.select import Selection

    return Selection.of(
        day.date() if day else None,
        since.date() if since else None,
        until.date() if until else None,
        reason,
        source,
    )


@app.command()
def errors(
    date: DayOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    reason: ReasonOption = None,
    source: SourceOption = None,
    sample: Annotated[int, typer.Option(help="Show this many events with their bytes.")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON document for machines.")
    ] = False,
) -> None:
    """Rejected events (error zone and duplicates) by day, reason, field and source."""
    from headrace.cli import errors_view
    from headrace.runtime import settings
    from headrace.runtime.settings import CommonSettings

    common = settings.load(CommonSettings)
    found = errors_view.report(common, _selection(date, since, until, reason, source), sample)
    if as_json:
        sys.stdout.buffer.write(errors_view.to_json(found) + b"\n")
    else:
        errors_view.render(console, found)


@app.command()
def reprocess(
    date: DayOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    reason: ReasonOption = None,
    source: SourceOption = None,
    dry_run: Annotated[
        bool, typer.Option(help="Validate and report; publish nothing, write no ledger.")
    ] = False,
) -> None:
    """Validate error records again with the current contract; republish those that now pass."""
    from rich.progress import Progress

    from headrace.cli import reprocess_view
    from headrace.rejections.reprocess import run
    from headrace.runtime import settings
    from headrace.runtime.settings import CommonSettings

    common = settings.load(CommonSettings)
    selection = _selection(date, since, until, reason, source)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("reprocessing", total=None)
        summary = run(
            common,
            selection,
            lambda done, total: bar.update(task, completed=done, total=total),
            dry_run=dry_run,
        )
    reprocess_view.render(console, summary, dry_run)
    if summary.publish_failed:
        raise typer.Exit(1)


@app.command()
def sql(
    query: Annotated[
        str | None,
        typer.Argument(help="A SQL query or the path of a .sql file; none: interactive shell."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="table | csv | json | parquet")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (needed for parquet).")
    ] = None,
    csv: Annotated[bool, typer.Option(help="Same as --format csv.")] = False,
    max_rows: Annotated[int, typer.Option(help="Most rows printed as a table.")] = 100,
) -> None:
    """Query the warehouse read-only: tables, marts and views in scope (docs/analytics.md)."""
    from headrace.cli import query as sql_query
    from headrace.lake import warehouse
    from headrace.runtime import settings
    from headrace.runtime.settings import CommonSettings

    try:
        fmt = sql_query.OutputFormat("csv" if csv else output_format)
    except ValueError:
        raise OperatorError(
            f"unknown --format {output_format!r}; choose table, csv, json or parquet"
        ) from None
    con = warehouse.connect(settings.load(CommonSettings), read_only=True)
    try:
        if query is None:
            sql_query.shell(con)
        else:
            sql_query.run(con, sql_query.script_text(query), fmt, output, max_rows)
    finally:
        con.close()


@app.command()
def demo(
    events: Annotated[int, typer.Option(help="Events in the sample file.")] = 200_000,
    port_base: Annotated[
        int,
        typer.Option(
            help="The services listen on this + 1 ... + 5 (0: 8081 ... 8085), for a demo beside "
            "other pipelines; the broker's ports are HEADRACE_INFRA_KAFKA_PORT and "
            "HEADRACE_INFRA_KAFKA_CONTROLLER_PORT."
        ),
    ] = 0,
) -> None:
    """Run the whole pipeline on a real broker with a sample file, print a report, stop."""
    from headrace.cli.demo import run_demo

    run_demo(console, events, port_base)


@infra_app.command("start")
def infra_start(
    gcs: Annotated[bool, typer.Option(help="Also start the GCS emulator.")] = False,
    brokers: Annotated[
        int, typer.Option(help="Kafka brokers: 1, or a KRaft cluster of N (docs/operations.md).")
    ] = 1,
    postgres: Annotated[
        bool, typer.Option(help="Also start PostgreSQL for the catalog (Debian's package).")
    ] = False,
) -> None:
    """Fetch (once) and start Kafka; create the topics."""
    from headrace.dev.infra import kafka_dist, local_kafka
    from headrace.dev.infra.config import InfraSettings
    from headrace.dev.infra.gcs_emulator import GcsEmulator
    from headrace.dev.infra.postgres_server import PostgresServer
    from headrace.runtime import settings
    from headrace.runtime.settings import CommonSettings

    infra = settings.load(InfraSettings)
    if postgres:  # first: not installed is one line before the broker's minutes of start
        server = PostgresServer(infra)
        server.start()
        console.print(server.status(), markup=False)
    version = kafka_dist.kafka_version()
    with console.status(f"starting Kafka {version} (first run fetches it from Maven Central)"):
        kafka = local_kafka.start(infra, brokers)
    console.print(kafka.status())
    if gcs:
        emulator = GcsEmulator(infra)
        emulator.start()
        console.print(emulator.status())
    create_topics(settings.load(CommonSettings), kafka.bootstrap)


@infra_app.command("stop")
def infra_stop() -> None:
    """Stop Kafka (every node at once), the emulator and PostgreSQL (their data stays)."""
    from headrace.dev.infra import local_kafka
    from headrace.dev.infra.config import InfraSettings
    from headrace.dev.infra.gcs_emulator import GcsEmulator
    from headrace.dev.infra.postgres_server import PostgresServer
    from headrace.runtime import settings

    infra = settings.load(InfraSettings)
    for part in (GcsEmulator(infra), PostgresServer(infra)):
        part.stop()
        console.print(part.status(), markup=False)
    console.print(local_kafka.stop(infra).status())


@infra_app.command("status")
def infra_status() -> None:
    """Is the local infrastructure running?"""
    from headrace.dev.infra import local_kafka
    from headrace.dev.infra.config import InfraSettings
    from headrace.dev.infra.gcs_emulator import GcsEmulator
    from headrace.dev.infra.postgres_server import PostgresServer
    from headrace.runtime import settings

    infra = settings.load(InfraSettings)
    for part in (local_kafka.current(infra), GcsEmulator(infra), PostgresServer(infra)):
        console.print(part.status(), markup=False)


@stack_app.command("up")
def stack_up() -> None:
    """Start what docker-compose.yml declares (Grafana skipped); print where each one is."""
    from headrace.cli import stack_view
    from headrace.dev.stack import open_stack

    stack = open_stack()
    try:
        with console.status("starting the stack (the Kafka cluster takes 20-40 s)"):
            stack.up()
    except OperatorError as exc:  # what started keeps running, as with compose
        raise OperatorError(f"{exc}; `headrace stack down` stops what started") from None
    stack_view.render(console, stack)
    stack_view.replay_hint(console, stack)


@stack_app.command("down")
def stack_down() -> None:
    """Stop every component, in the reverse order of `up` (their data stays)."""
    from headrace.cli import stack_view
    from headrace.dev.stack import open_stack

    stack = open_stack()
    with console.status("stopping the stack"):
        stack.down()
    stack_view.render(console, stack)


@stack_app.command("status")
def stack_status() -> None:
    """What of the stack runs, and where."""
    from headrace.cli import stack_view
    from headrace.dev.stack import open_stack

    stack_view.render(console, open_stack())


@stack_app.command("env")
def stack_env() -> None:
    """`export` lines that point `headrace` commands (replay, report, sql) at the stack."""
    import shlex

    from headrace.dev.stack import open_stack

    for key, value in open_stack().client_env().items():
        print(f"export {key}={shlex.quote(value)}")


@stack_app.command("wait")
def stack_wait(
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most.")] = 300.0,
) -> None:
    """Wait until every replayed event is placed (fact, duplicates or error zone)."""
    from headrace.cli import stack_view
    from headrace.dev.stack import open_stack

    stack_view.wait_settled(console, open_stack(), timeout)


def main() -> None:
    """Entry point of the `headrace` command."""
    exit_on_operator_error(app)
