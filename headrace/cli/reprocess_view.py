"""The summary `headrace reprocess` prints: per reason, what passed, what still fails and why,
what was skipped as reprocessed already."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.table import Table

from headrace.rejections.reprocess import Summary


def render(console: Console, s: Summary, dry_run: bool) -> None:
    verb = "would republish" if dry_run else "republished"
    t = Table(title=f"reprocess {s.run_id} under {s.contract}" + (" (dry run)" if dry_run else ""))
    for col in ("reason", verb, "still failing (now)", "skipped: reprocessed", "publish failed"):
        t.add_column(col, justify="left" if col.startswith(("reason", "still")) else "right")
    for reason in s.reasons():
        now: Counter[str] = Counter(
            {was_now[1]: n for was_now, n in s.still_failing.items() if was_now[0] == reason}
        )
        t.add_row(
            reason,
            f"{s.republished[reason]:,}",
            ", ".join(f"{r} {n:,}" for r, n in now.most_common()) or "0",
            f"{s.skipped[reason]:,}",
            f"{s.publish_failed[reason]:,}",
        )
    console.print(t)
    if s.duplicates:
        console.print(f"{s.duplicates:,} DUPLICATE rejections left alone: the first copy is loaded")
    if not s.reasons():
        console.print("nothing to reprocess for this selection")
    elif not dry_run:
        console.print(
            f"ledger: reprocess/attempts/{s.run_id}.*.jsonl; `headrace errors` shows the outcome "
            "once the pipeline has placed the copies"
        )
    if s.publish_failed:
        console.print(
            f"[red]{sum(s.publish_failed.values()):,} not acknowledged by the broker[/]: "
            "run again to retry them"
        )
