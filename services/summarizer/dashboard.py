"""The dashboard page, served by the summarizer's health server from the BI snapshot.

The page reads the snapshot file read-only, like any BI tool, so it never touches the warehouse
the summarizer writes; the data are cached until the file is replaced. Charts are SVG rendered
here (services/summarizer/charts.py) and the page reloads itself: no scripts, no CDN.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import duckdb
from aiohttp import web

from services.summarizer.charts import Series, horizontal_bars, stacked_bars

# The dashboard query on the daily summary (also timed by bench/dashboard_query.py).
DAILY_SQL = """
SELECT strftime(date, '%Y-%m-%d') AS day, customer_region, txn_count, total_amount
FROM transaction_daily_summary
WHERE date > (SELECT max(date) FROM transaction_daily_summary) - CAST($days AS INTEGER)
ORDER BY day, customer_region
"""
ERRORS_SQL = """
SELECT strftime(date, '%Y-%m-%d') AS day, reason, records
FROM error_daily_reason
WHERE date > (SELECT max(date) FROM error_daily_reason) - CAST($days AS INTEGER)
ORDER BY day, reason
"""
HOURLY_SQL = """
SELECT strftime(hour AT TIME ZONE 'UTC', '%m-%d %H:00') AS hour, sum(txn_count) AS txn_count
FROM hourly_volume GROUP BY ALL ORDER BY 1
"""
INFO_SQL = """
SELECT epoch(written_at), fact_rows, epoch(newest_event_time), epoch(last_load_time)
FROM snapshot_info
"""
RECENT_DAYS_SQL = """
SELECT strftime(date, '%Y-%m-%d'), txn_count, epoch(newest_event_time), epoch(last_load_time)
FROM data_freshness ORDER BY last_load_time DESC, date DESC LIMIT 5
"""
RECONCILIATION_SQL = """
SELECT events_in, fact_rows, duplicates, error_zone, in_flight, holds, epoch(observed_at)
FROM reconciliation
"""


@dataclass
class DashboardData:
    daily: list[tuple[Any, ...]] = field(default_factory=list)
    errors: list[tuple[Any, ...]] = field(default_factory=list)
    hourly: list[tuple[Any, ...]] = field(default_factory=list)
    info: tuple[Any, ...] | None = None
    recent_days: list[tuple[Any, ...]] = field(default_factory=list)
    reconciliation: tuple[Any, ...] | None = None


def read_snapshot(path: Path, days: int) -> DashboardData:
    con = duckdb.connect(str(path), read_only=True)
    try:
        params = {"days": days}
        return DashboardData(
            daily=con.execute(DAILY_SQL, params).fetchall(),
            errors=con.execute(ERRORS_SQL, params).fetchall(),
            hourly=con.execute(HOURLY_SQL).fetchall(),
            info=con.execute(INFO_SQL).fetchone(),
            recent_days=con.execute(RECENT_DAYS_SQL).fetchall(),
            reconciliation=con.execute(RECONCILIATION_SQL).fetchone(),
        )
    finally:
        con.close()


@dataclass
class DashboardSource:
    """The snapshot's data, read again only when the file was replaced."""

    path: Path
    days: int = 60
    _key: tuple[int, int, int] | None = None
    _data: DashboardData | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def data(self) -> DashboardData | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        with self._lock:
            if key != self._key:
                self._data, self._key = read_snapshot(self.path, self.days), key
            return self._data


def pivot(rows: list[tuple[Any, ...]], value_index: int) -> tuple[list[str], list[Series]]:
    """(label, group, values...) rows -> labels and one series per group (zeros where absent)."""
    labels = sorted({r[0] for r in rows})
    groups = sorted({r[1] for r in rows})
    at = {label: i for i, label in enumerate(labels)}
    values = {g: [0.0] * len(labels) for g in groups}
    for r in rows:
        values[r[1]][at[r[0]]] = float(r[value_index])
    return labels, [Series(g, values[g]) for g in groups]


def render(data: DashboardData | None, path: Path, refresh_seconds: int) -> str:
    d = data or DashboardData()
    now = time.time()
    labels, counts = pivot(d.daily, 2)
    _, amounts = pivot(d.daily, 3)
    err_labels, errors = pivot(d.errors, 2)
    charts = [
        stacked_bars("daily-count", "Daily transactions by region", labels, counts),
        stacked_bars("daily-amount", "Daily amount by region", labels, amounts),
        stacked_bars("errors", "Error zone records by reason (day staged)", err_labels, errors),
        stacked_bars(
            "freshness",
            "Data freshness: transactions per UTC hour, newest days",
            [r[0] for r in d.hourly],
            [Series("transactions", [float(r[1]) for r in d.hourly])],
            note=_freshness_note(d, now),
        ),
        _reconciliation_chart(d.reconciliation),
    ]
    status = f"snapshot written {_ago(d.info[0], now)}" if d.info else f"no snapshot yet at {path}"
    return PAGE.format(
        refresh=refresh_seconds,
        status=escape(status),
        charts="".join(charts),
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


def _reconciliation_chart(row: tuple[Any, ...] | None) -> str:
    if row is None:
        return horizontal_bars("reconciliation", "Reconciliation", [], "")
    events_in, fact, dups, errors, in_flight, holds, _ = row
    items = [("fact rows", fact), ("duplicates", dups), ("error zone", errors)]
    if events_in is None:
        verdict = "events in: unknown (Kafka did not answer)"
    else:
        items = [("events in (raw)", events_in), *items, ("in flight", in_flight)]
        verdict = (
            "in = fact + duplicates + error zone: holds"
            if holds
            else f"in = fact + duplicates + error zone: {in_flight:,} in flight"
            if in_flight > 0
            else f"DOES NOT HOLD: {-in_flight:,} more placed than entered"
        )
    cls = "ok" if holds else "warn"
    note = f'<p class="verdict {cls}">{escape(verdict)}</p>'
    return horizontal_bars(
        "reconciliation", "Reconciliation: in = fact + duplicates + error zone", items, note
    )


def _freshness_note(d: DashboardData, now: float) -> str:
    if not d.info or d.info[2] is None:
        return ""
    _, rows, newest, last_load = d.info
    lines = [
        f"<p>{int(rows or 0):,} fact rows; newest event {_when(newest)} ({_ago(newest, now)}); "
        f"last load {_when(last_load)} ({_ago(last_load, now)})</p>",
        '<table class="days"><tr><th>day</th><th>rows</th><th>newest event</th>'
        "<th>last load</th></tr>",
    ]
    for day, n, newest_day, load in d.recent_days:
        lines.append(
            f"<tr><td>{day}</td><td>{int(n):,}</td><td>{_when(newest_day)}</td>"
            f"<td>{_when(load)}</td></tr>"
        )
    lines.append("</table>")
    return "".join(lines)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(epoch: float, now: float) -> str:
    seconds = max(0.0, now - epoch)
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{seconds:.0f} s ago"


def add_routes(app: web.Application, source: DashboardSource, refresh_seconds: int) -> None:
    """Serve GET /dashboard (and / redirecting to it) from `source`."""

    async def dashboard(_: web.Request) -> web.Response:
        data = await asyncio.get_running_loop().run_in_executor(None, _safe_data, source)
        html = render(data, source.path, refresh_seconds)
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    async def root(_: web.Request) -> web.Response:
        raise web.HTTPFound("/dashboard")

    app.router.add_get("/dashboard", dashboard)
    app.router.add_get("/", root)


def _safe_data(source: DashboardSource) -> DashboardData | None:
    # A snapshot replaced between stat and open is simply read on the next request.
    with contextlib.suppress(duckdb.IOException):
        return source.data()
    return None


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>headrace dashboard</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #1f2937;
       background: #f8fafc; }}
header {{ display: flex; align-items: baseline; gap: 16px; }}
h1 {{ font-size: 20px; margin: 0 0 8px; }}
.status {{ color: #64748b; }}
main {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }}
figure.chart {{ background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; margin: 0;
               padding: 12px 16px; }}
figcaption {{ font-weight: 600; margin-bottom: 6px; }}
svg text {{ font-size: 11px; fill: #475569; }}
svg line.grid {{ stroke: #e2e8f0; }}
.legend {{ list-style: none; padding: 0; margin: 4px 0 0; display: flex; flex-wrap: wrap;
          gap: 4px 12px; }}
.swatch {{ display: inline-block; width: 10px; height: 10px; margin-right: 4px;
          border-radius: 2px; }}
.empty {{ color: #94a3b8; font-style: italic; }}
.verdict.ok {{ color: #15803d; font-weight: 600; }}
.verdict.warn {{ color: #b45309; font-weight: 600; }}
table.days {{ border-collapse: collapse; font-size: 12px; }}
table.days td, table.days th {{ padding: 2px 8px; text-align: right; }}
footer {{ color: #94a3b8; margin-top: 12px; font-size: 12px; }}
</style></head>
<body>
<header><h1>headrace</h1><span class="status">{status}</span></header>
<main>{charts}</main>
<footer>rendered {generated}; this page reloads every {refresh} s</footer>
</body></html>
"""
