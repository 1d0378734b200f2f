"""A real Prometheus scrapes the five running services and evaluates the real alert rules.

Checks that every series the rules and the dashboard use exists (the broker's too: Prometheus
scrapes the session broker's metrics agent as job kafka), that the numbers agree with
what landed (reconciliation, lag, rejections), and that alerts react: the error ratio of a
sample with 10% bad events puts HeadraceErrorRatioHigh in pending, and stopping a service puts
HeadraceServiceDown in pending for it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from headrace.dev.infra.ports import free_port_block
from headrace.dev.local_pipeline import SERVICES, LocalPipeline
from headrace.dev.sample_events import generate
from headrace.kafka.topics import Topics
from headrace.runtime.settings import CommonSettings
from services.producer.runner import replay
from tests.conftest import wait_settled
from tests.deploy.prometheus_server import (
    PrometheusServer,
    dashboard_exprs,
    rule_exprs,
    tool,
)

pytestmark = pytest.mark.integration
Start = Callable[[CommonSettings], LocalPipeline]
METRIC_NAME = re.compile(
    r"\b(headrace:[a-z0-9_:]+|headrace_[a-z0-9_]+|kafka_[a-z0-9_]+|process_[a-z_]+|up)\b"
)


@pytest.fixture
def prometheus_for(
    tmp_path: Path, broker_metrics: str
) -> Iterator[Callable[[LocalPipeline], PrometheusServer]]:
    tool("prometheus")
    started: list[PrometheusServer] = []

    def start(pipeline: LocalPipeline) -> PrometheusServer:
        targets = {s: f"127.0.0.1:{pipeline.port(s)}" for s in SERVICES}
        home = tmp_path / "prometheus"
        home.mkdir()
        # The session's broker, with its metrics agent: the Kafka rules see a healthy cluster.
        server = PrometheusServer(home, free_port_block(1), targets, [broker_metrics])
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()


def test_alert_rules_and_dashboard_on_live_services(
    make_settings: Callable[..., CommonSettings],
    start_pipeline: Start,
    prometheus_for: Callable[[LocalPipeline], PrometheusServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEADRACE_WAREHOUSE_METRICS_INTERVAL_SECONDS", "1")
    common = make_settings()
    pipeline = start_pipeline(common)
    prom = prometheus_for(pipeline)
    prom.wait(lambda: _all_up(prom), "every service scraped")
    # Two files: the first creates every counter series (a series born with its first value
    # shows no increase), the second is what rates and the error ratio measure.
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    kinds = generate(first, 2_000, bad_ratio=0.1, seed=23)
    expected = generate(second, 1_000, bad_ratio=0.1, seed=29, first_id=10_001)
    assert set(expected) <= set(kinds)
    replay(first, common, show_progress=False)
    wait_settled(common, 2_000, pipeline)
    replay(second, common, show_progress=False)
    counts = wait_settled(common, 3_000, pipeline)
    prom.wait(
        lambda: _placed(prom) == counts.events_in,
        "the reconciliation to catch up with what landed",
    )

    _assert_reconciliation(prom, counts.events_in or 0, counts.fact_rows, counts.error_zone)
    _assert_lag_is_zero_on_every_partition(prom, Topics(common.topic_prefix))
    _assert_every_referenced_series_exists(prom)
    _assert_zones_written_and_data_fresh(prom)
    _assert_every_expression_evaluates(prom)
    _assert_error_ratio_alert_pending(prom, rejected=1_000 - expected["VALID"], total=1_000)

    pipeline.stop(("stager",))
    prom.wait(
        lambda: any(
            a["alertname"] == "HeadraceServiceDown" and a.get("component") == "stager"
            for a in prom.alerts("pending")
        ),
        "HeadraceServiceDown pending for the stopped stager",
        timeout=30,
    )
    assert not [a for a in prom.alerts("pending") if a.get("component") not in ("stager", None)]


def _all_up(prom: PrometheusServer) -> bool:
    up = prom.query("up")
    return len(up) == len(SERVICES) + 1 and all(r["value"][1] == "1" for r in up)


def _placed(prom: PrometheusServer) -> float:
    result = prom.query("headrace:reconciliation_placed_events")
    return float(result[0]["value"][1]) if result else -1.0


def _assert_reconciliation(prom: PrometheusServer, raw_in: int, fact: int, errors: int) -> None:
    sides = {
        r["metric"]["side"]: float(r["value"][1])
        for r in prom.query("headrace_reconciliation_events")
    }
    assert sides == {"in": raw_in, "fact": fact, "duplicate": 0, "error": errors}
    assert prom.value("headrace:reconciliation_gap_events") == 0
    assert prom.value('max(headrace_warehouse_rows{table="transaction_fact"})') == fact


def _assert_lag_is_zero_on_every_partition(prom: PrometheusServer, topics: Topics) -> None:
    lag = {
        (r["metric"]["service"], r["metric"]["topic"], r["metric"]["partition"]): r["value"][1]
        for r in prom.query("headrace_consumer_lag_messages")
    }
    wanted = {
        "stager": (topics.raw, topics.error),
        "validator": (topics.raw,),
        "loader": (topics.validated,),
    }
    partitions = topics.partitions()
    expected = {
        (service, topic, str(p)): "0"
        for service, names in wanted.items()
        for topic in names
        for p in range(partitions[topic])
    }
    assert lag == expected


def _assert_zones_written_and_data_fresh(prom: PrometheusServer) -> None:
    for metric in ("headrace_bucket_bytes_written_total", "headrace_bucket_files_written_total"):
        written = {
            r["metric"]["zone"]: float(r["value"][1])
            for r in prom.query(f"sum by (zone) ({metric})")
        }
        assert set(written) == {"raw", "error", "clean"} and min(written.values()) > 0, written
    # The sample's events are from the last 30 days; loaded just now.
    assert 0 <= prom.value("headrace:newest_event_age_seconds") < 31 * 86_400
    assert 0 <= prom.value("headrace:seconds_since_last_load") < 120
    loader_newest = prom.value('max(headrace_newest_event_timestamp_seconds{service="loader"})')
    assert loader_newest == prom.value("max(headrace_warehouse_newest_event_timestamp_seconds)")


def _assert_every_referenced_series_exists(prom: PrometheusServer) -> None:
    texts = [*rule_exprs().values(), *dashboard_exprs()]
    names = {m for text in texts for m in METRIC_NAME.findall(text)}
    missing = [n for n in sorted(names) if not prom.query(f'count({{__name__="{n}"}})')]
    assert not missing, f"rules or dashboard use series that no service exports: {missing}"


def _assert_every_expression_evaluates(prom: PrometheusServer) -> None:
    for name, expr in rule_exprs().items():
        prom.query(expr)  # raises on a PromQL error
        if name.startswith("headrace:"):
            assert prom.query(name), f"recording rule {name} recorded nothing"
    empty = [
        expr for expr in dashboard_exprs() if not prom.query(expr.replace("$__rate_interval", "5s"))
    ]
    assert not empty, f"dashboard queries with no data on live services: {empty}"


def _assert_error_ratio_alert_pending(prom: PrometheusServer, rejected: int, total: int) -> None:
    ratio = prom.value("headrace:validator_error_ratio:rate10m")
    assert ratio == pytest.approx(rejected / total, abs=0.01)
    pending = {a["alertname"] for a in prom.alerts("pending")}
    assert pending == {"HeadraceErrorRatioHigh"}, pending
    assert not prom.alerts("firing")
