"""The dashboard page: charts rendered from the snapshot, served beside /healthz."""

from __future__ import annotations

import re
import socket
import urllib.request
from datetime import date
from pathlib import Path

import pyarrow as pa

from headrace.runtime.http import HealthServer, Heartbeat, build_app
from services.summarizer import snapshot
from services.summarizer.dashboard import DashboardSource, add_routes, render
from services.summarizer.publisher import ERROR_DAILY_REASON_SCHEMA
from tests.analytics.conftest import Lake, reconciliation_row

CHARTS = {"daily-count", "daily-amount", "errors", "freshness", "reconciliation"}
FIGURE = re.compile(r'<figure class="chart" id="([a-z-]+)"[^>]*data-marks="(\d+)"')


def publish(lake: Lake, events_in: int) -> Path:
    errors = pa.table(
        [[date(2026, 10, 1), date(2026, 10, 2)], ["PARSE", "RANGE"], [4, 6]],
        schema=ERROR_DAILY_REASON_SCHEMA,
    )
    fact = lake.con.execute("SELECT count(*) FROM transaction_fact").fetchone() or (0,)
    target = lake.home / "marts.duckdb"
    extras = {
        "error_daily_reason": errors,
        "reconciliation": reconciliation_row(events_in, int(fact[0]), 10),
    }
    snapshot.write(lake.con, target, extras, None)
    return target


def test_every_chart_shows_the_snapshot_data(lake: Lake) -> None:
    lake.load("b1", 3_000, first_id=1, first_day=0, days=12)
    lake.refresh()
    target = publish(lake, events_in=3_010 + 5)

    html = render(DashboardSource(target, days=10).data(), target, 15)

    charts = dict(FIGURE.findall(html))
    assert set(charts) == CHARTS and all(int(n) > 0 for n in charts.values()), charts
    # 10 days shown x 5 regions; errors on 2 days; one bar per hour of the last 7 days.
    assert int(charts["daily-count"]) == 50 and int(charts["errors"]) == 2
    assert int(charts["freshness"]) == 7 * 24
    assert "5 in flight" in html and "3,000 fact rows" in html
    assert '<meta http-equiv="refresh" content="15">' in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")


def test_without_a_snapshot_every_chart_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "marts.duckdb"
    html = render(DashboardSource(missing).data(), missing, 15)
    charts = dict(FIGURE.findall(html))
    assert set(charts) == CHARTS and set(charts.values()) == {"0"}
    assert html.count("no data yet") == len(CHARTS) and "no snapshot yet" in html


def test_served_by_the_health_server(lake: Lake) -> None:
    lake.load("b1", 500, first_id=1, first_day=0, days=2)
    lake.refresh()
    target = publish(lake, events_in=510)
    app = build_app(Heartbeat(), lambda: (True, "ok"))
    add_routes(app, DashboardSource(target), refresh_seconds=30)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = HealthServer(app, "127.0.0.1", port)
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            assert r.status == 200 and r.url.endswith("/dashboard")
            assert r.headers["Content-Type"].startswith("text/html")
            assert "holds" in r.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            assert r.status == 200
    finally:
        server.stop()
