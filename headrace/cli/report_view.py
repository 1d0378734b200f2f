"""The readable report printed by `headrace report` and the demo."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from headrace.audit.reconciliation import Counts, count
from headrace.kafka.topics import Topics
from headrace.lake import warehouse
from headrace.lake.bucket import Bucket
from headrace.runtime import settings
from headrace.runtime.settings import CommonSettings


def current_counts(common: CommonSettings) -> tuple[Counts, list[tuple[object, ...]]]:
    con = warehouse.connect(common, read_only=True)
    try:
        bucket = Bucket.open(common.bucket_url, common.gcs_endpoint)
        counts = count(con, bucket, common.bootstrap_servers, Topics(common.topic_prefix))
        summary = con.execute(
            "SELECT year, month, day, customer_region, txn_count, round(total_amount, 2), "
            "round(avg_processing_duration, 3) FROM transaction_daily_summary "
            "ORDER BY year DESC, month DESC, day DESC, customer_region LIMIT 10"
        ).fetchall()
        return counts, summary
    finally:
        con.close()


def render(console: Console, c: Counts, summary: list[tuple[object, ...]]) -> None:
    flow = Table(title="What landed", show_header=False)
    flow.add_row("events in (raw topic)", f"{c.raw_in:,}")
    flow.add_row("raw zone records", f"{c.raw_zone:,}")
    flow.add_row("fact rows", f"{c.fact_rows:,}")
    flow.add_row("duplicates (first copy loaded)", f"{c.duplicates:,}")
    flow.add_row("error zone records", f"{c.error_zone:,}")
    verdict = "[green]holds[/]" if c.reconciled else "[red]DOES NOT HOLD[/]"
    flow.add_row(
        "in = fact + duplicates + error",
        f"{c.raw_in:,} = {c.fact_rows:,} + {c.duplicates:,} + {c.error_zone:,}: {verdict}",
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
