"""The readable report printed by `headrace report` and the demo."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from headrace.audit import reconciliation
from headrace.audit.reconciliation import Reconciliation
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics
from headrace.lake import warehouse
from headrace.lake.bucket import Bucket
from headrace.lake.error_zone import ErrorZoneTally
from headrace.runtime import settings
from headrace.runtime.settings import CommonSettings


def current_counts(common: CommonSettings) -> tuple[Reconciliation, list[tuple[object, ...]]]:
    """The reconciliation with the raw zone (so `settled` can be told), and the newest summaries."""
    con = warehouse.connect(common, read_only=True)
    try:
        counts = reconciliation.observe(
            con,
            ErrorZoneTally(Bucket.open(common.bucket_url, common.gcs_endpoint)),
            kafka_clients.admin(common.bootstrap_servers),
            Topics(common.topic_prefix).raw,
            raw_zone_too=True,
        )
        summary = con.execute(
            "SELECT year, month, day, customer_region, txn_count, round(total_amount, 2), "
            "round(avg_processing_duration, 3) FROM transaction_daily_summary "
            "ORDER BY year DESC, month DESC, day DESC, customer_region LIMIT 10"
        ).fetchall()
        return counts, summary
    finally:
        con.close()


def render(console: Console, c: Reconciliation, summary: list[tuple[object, ...]]) -> None:
    events_in = "unknown (Kafka did not answer)" if c.events_in is None else f"{c.events_in:,}"
    flow = Table(title="What landed", show_header=False)
    flow.add_row("events in (raw topic)", events_in)
    flow.add_row("raw zone records", f"{c.raw_zone or 0:,}")
    flow.add_row("fact rows", f"{c.fact_rows:,}")
    flow.add_row("duplicates (first copy loaded)", f"{c.duplicates:,}")
    flow.add_row("error zone records", f"{c.error_zone:,}")
    verdict = "[green]holds[/]" if c.holds else "[red]DOES NOT HOLD[/]"
    flow.add_row(
        "in = fact + duplicates + error",
        f"{events_in} = {c.fact_rows:,} + {c.duplicates:,} + {c.error_zone:,}: {verdict}",
    )
    console.print(flow)
    reasons = Table(title="Error zone by reason")
    reasons.add_column("reason")
    reasons.add_column("records", justify="right")
    for reason, n in c.errors_by_reason.items():
        reasons.add_row(reason, f"{n:,}")
    console.print(reasons)
    days = Table(title="transaction_daily_summary (newest days first)")
    for col in ("year", "month", "day", "region", "txn_count", "total_amount", "avg_duration_s"):
        days.add_column(col, justify="right")
    for row in summary:
        days.add_row(*(str(v) for v in row))
    console.print(days)


def print_report(console: Console) -> None:
    counts, summary = current_counts(settings.load(CommonSettings))
    render(console, counts, summary)
