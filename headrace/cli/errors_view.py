"""`headrace errors`: rejected events by day, reason, field and source, with samples of their
original bytes, as rich tables or one JSON document (headrace.rejections.select does the
reading)."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

from headrace.codec import original_bytes
from headrace.lake import warehouse
from headrace.lake.bucket import Bucket
from headrace.rejections import select as rejections
from headrace.rejections.select import Selection
from headrace.runtime.settings import CommonSettings

SAMPLE_WIDTH = 240  # characters of a sample's bytes in the table (--json has them all)


def report(common: CommonSettings, selection: Selection, sample: int) -> dict[str, Any]:
    con = warehouse.connect(common, read_only=True)
    try:
        rejections.load(con, Bucket.open(common.bucket_url, common.gcs_endpoint), selection)
        by_reason = rejections.by_reason(con)
        groups = rejections.groups(con)
        samples = rejections.samples(con, sample)
    finally:
        con.close()
    for s in samples:
        s["original"] = original_bytes.exact(s.pop("original"), s.pop("original_base64"))
        s["headers"] = orjson.loads(s["headers"]) if s["headers"] else None
    return {
        "selection": {
            "since": selection.since,
            "until": selection.until,
            "reasons": list(selection.reasons),
            "sources": list(selection.sources),
        },
        "by_reason": by_reason,
        "groups": groups,
        "samples": samples,
    }


def to_json(found: dict[str, Any]) -> bytes:
    samples = [
        {**{k: v for k, v in s.items() if k != "original"}, **original_bytes.as_json(s["original"])}
        for s in found["samples"]
    ]
    return orjson.dumps({**found, "samples": samples}, option=orjson.OPT_INDENT_2)


def render(console: Console, found: dict[str, Any]) -> None:
    reasons = found["by_reason"]
    if not reasons:
        console.print("no rejected events match")
        return
    console.print(_by_reason_table(reasons))
    console.print(_groups_table(found["groups"]))
    for i, s in enumerate(found["samples"], start=1):
        console.print(_sample(i, s))


def _by_reason_table(reasons: list[dict[str, Any]]) -> Table:
    t = Table(title="Rejected events by reason")
    counts = ("events", "reprocessed", "resolved", "still_failing", "rejected_again", "attempts")
    for col in ("reason", *counts):
        t.add_column(col.replace("_", " "), justify="left" if col == "reason" else "right")
    for r in reasons:
        t.add_row(r["reason"], *(f"{r[k]:,}" for k in counts))
    t.caption = (
        "reprocessed: republished by `headrace reprocess`; resolved: now in transaction_fact; "
        "still failing: under the contract of the last attempt; rejected again: republished "
        "copies the validator refused; attempts: `headrace reprocess` runs that took up one of "
        "these events (each event is counted once however often it was attempted)"
    )
    return t


def _groups_table(groups: list[dict[str, Any]]) -> Table:
    t = Table(title="By day, reason, field and source")
    cols = ("day", "reason", "field", "source system", "source file", "topic/partition")
    for col in cols:
        t.add_column(col)
    for col in ("events", "reprocessed", "resolved"):
        t.add_column(col, justify="right")
    for g in groups:
        t.add_row(
            *(
                Text(_text(g[k]))
                for k in (
                    "day",
                    "reason",
                    "field",
                    "source_system",
                    "source_file",
                    "source_partition",
                )
            ),
            *(f"{g[k]:,}" for k in ("events", "reprocessed", "resolved")),
        )
    return t


def _sample(i: int, s: dict[str, Any]) -> Table:
    t = Table(title=f"sample {i}", show_header=False, title_justify="left")
    t.add_column("", style="bold")
    t.add_column("")
    where = f"{s['source_topic']}/{s['source_partition']}/{s['source_offset']}"
    problems = s["problem_reasons"] or []
    rows = {
        "day": s["day"],
        "reason": s["reason"]
        + (f" (all problems: {', '.join(s['problem_reasons'])})" if len(problems) > 1 else ""),
        "field": s["field"],
        "message": s["message"],
        "raw message": where,
        "source": " | ".join(_text(v) for v in (s["source_system"], s["source_file"])),
        "reprocess": f"{s['attempts']} attempts, {s['copies']} copies republished, "
        f"last attempt {s['last_outcome'] or '-'}" + (", resolved" if s["resolved"] else ""),
        "original": original_bytes.printable(s["original"], SAMPLE_WIDTH),
    }
    for k, v in rows.items():
        t.add_row(k, Text(original_bytes.printable(_text(v).encode()) if k != "original" else v))
    return t


def _text(v: object) -> str:
    if v is None:
        return "-"
    return v.isoformat() if isinstance(v, date) else str(v)
