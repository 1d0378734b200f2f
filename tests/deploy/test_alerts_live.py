"""Cluster health, live: a real Prometheus scrapes a real broker's JMX agent and running services,
evaluates the repository's rules (every `for:` shortened to 2 s in a copy, expressions unchanged)
and sends to a real Alertmanager with the repository's configuration.

Stopping the broker fires KafkaBrokerDown, which Alertmanager holds and delivers to the pager
receiver's webhook (a local HTTP endpoint; grouping waits shortened to 1 s in Alertmanager's
copy, the route tree unchanged); stopping the catalog's PostgreSQL fires
HeadraceCatalogUnreachable, and starting it again resolves it, down to the webhook.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from headrace.dev.infra import kafka_metrics
from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.kafka_broker import KafkaBroker
from headrace.dev.infra.ports import free_port_block
from headrace.dev.infra.postgres_server import PostgresServer
from headrace.dev.local_pipeline import LocalPipeline, settings_env
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics, ensure_pipeline_topics
from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings
from tests.deploy.alertmanager_server import AlertmanagerServer, Webhook, alertmanager_tool
from tests.deploy.prometheus_server import PrometheusServer, rules_with_short_durations, tool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


@dataclass
class Monitoring:
    prometheus: PrometheusServer
    alertmanager: AlertmanagerServer
    webhook: Webhook

    def firing(self, alertname: str) -> list[dict[str, str]]:
        return [a for a in self.prometheus.alerts("firing") if a["alertname"] == alertname]

    def received(self, alertname: str) -> list[dict[str, object]]:
        """Alerts Alertmanager holds as active under that name."""
        return [
            a
            for a in self.alertmanager.alerts()
            if a["labels"]["alertname"] == alertname and a["status"]["state"] == "active"
        ]


StartMonitoring = Callable[[dict[str, str], list[str]], Monitoring]


@pytest.fixture
def monitoring_of(tmp_path: Path) -> Iterator[StartMonitoring]:
    tool("prometheus")
    alertmanager_tool("alertmanager")
    started: list[PrometheusServer | AlertmanagerServer | Webhook] = []

    def start(targets: dict[str, str], kafka: list[str]) -> Monitoring:
        (tmp_path / "alertmanager").mkdir()
        (tmp_path / "prometheus").mkdir()
        webhook = Webhook()
        started.append(webhook)
        manager = AlertmanagerServer(
            tmp_path / "alertmanager", free_port_block(1), webhook.url, group_seconds=1
        )
        started.append(manager)
        manager.start()
        rules = rules_with_short_durations(tmp_path / "alerts.yml", seconds=2)
        prometheus = PrometheusServer(
            tmp_path / "prometheus",
            free_port_block(1),
            targets,
            kafka,
            alertmanager=f"127.0.0.1:{manager.port}",
            rules=rules,
        )
        started.append(prometheus)
        prometheus.start()
        return Monitoring(prometheus, manager, webhook)

    yield start
    for server in reversed(started):
        server.stop()


def test_a_stopped_broker_fires_kafka_broker_down_into_alertmanager(
    tmp_path: Path, monitoring_of: StartMonitoring
) -> None:
    # A broker of its own: the session's broker must keep running for the other tests.
    base = free_port_block(4)
    infra = InfraSettings(
        state_dir=tmp_path / "infra",
        kafka_port=base,
        kafka_controller_port=base + 1,
        kafka_metrics_port=base + 3,
        kafka_heap="384m",
    )
    broker = KafkaBroker(infra)
    broker.start()
    try:
        common = CommonSettings(
            bootstrap_servers=infra.bootstrap,
            topic_prefix=f"t-{uuid.uuid4().hex[:10]}",
            bucket_url=str(tmp_path / "bucket"),
            catalog_url=str(tmp_path / "catalog.sqlite"),
        )
        ensure_pipeline_topics(kafka_clients.admin(infra.bootstrap), Topics(common.topic_prefix))
        pipeline = LocalPipeline(
            tmp_path / "pipeline", settings_env(common, tmp_path), free_port_block()
        )
        pipeline.start(("producer",))
        try:
            pipeline.wait_ready(("producer",))
            watch: Monitoring = monitoring_of(
                {"producer": f"127.0.0.1:{pipeline.port('producer')}"},
                [f"127.0.0.1:{kafka_metrics.metrics_port(infra)}"],
            )
            prom = watch.prometheus
            prom.wait(lambda: len(prom.query("up == 1")) == 2, "the broker and the producer up")
            # Healthy: one active controller, nothing offline or under-replicated, no Kafka alert.
            active = "sum(kafka_controller_kafkacontroller_activecontrollercount)"
            prom.wait(lambda: prom.query(active), "the controller's metrics")
            assert prom.value(active) == 1
            assert prom.value("sum(kafka_controller_kafkacontroller_offlinepartitionscount)") == 0
            assert prom.value("sum(kafka_server_replicamanager_underreplicatedpartitions)") == 0
            # Before its first scrape the broker has no `up` series (KafkaBrokerDown's absent()
            # part); once scraped, every Kafka alert is quiet.
            prom.wait(
                lambda: (
                    not [
                        a
                        for state in ("pending", "firing")
                        for a in prom.alerts(state)
                        if a["alertname"].startswith("Kafka")
                    ]
                ),
                "no Kafka alert on a healthy broker",
                10,
            )

            broker.stop()
            prom.wait(lambda: watch.firing("KafkaBrokerDown"), "KafkaBrokerDown firing", 30)
            (fired,) = watch.firing("KafkaBrokerDown")
            assert fired["instance"] == f"127.0.0.1:{kafka_metrics.metrics_port(infra)}"
            watch.alertmanager.wait(
                lambda: watch.received("KafkaBrokerDown"), "KafkaBrokerDown in Alertmanager", 30
            )
            (received,) = watch.received("KafkaBrokerDown")
            labels = received["labels"]
            assert isinstance(labels, dict)
            assert labels["severity"] == "critical" and labels["system"] == "kafka"
            # Routed as critical: the pager receiver's webhook gets the notification.
            watch.alertmanager.wait(
                lambda: watch.webhook.notifications("pager", "KafkaBrokerDown", "firing"),
                "KafkaBrokerDown delivered to the pager webhook",
                30,
            )
            assert not watch.webhook.notifications("default", "KafkaBrokerDown", "firing")
            # The producer, still serving HTTP, is not reported down (the services this test
            # does not run are: they have no target).
            down = {a.get("component") for a in watch.firing("HeadraceServiceDown")}
            assert "stager" in down and "producer" not in down
        finally:
            pipeline.stop()
    finally:
        broker.stop()


def test_a_stopped_catalog_fires_catalog_unreachable_and_its_return_resolves_it(
    tmp_path: Path,
    bootstrap: str,
    stoppable_postgres: PostgresServer,
    monitoring_of: StartMonitoring,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PGPASSWORD", stoppable_postgres.password)
    common = CommonSettings(
        bootstrap_servers=bootstrap,
        topic_prefix=f"t-{uuid.uuid4().hex[:10]}",
        bucket_url=str(tmp_path / "bucket"),
        catalog_url=stoppable_postgres.catalog_url,
    )
    ensure_pipeline_topics(kafka_clients.admin(bootstrap), Topics(common.topic_prefix))
    warehouse.migrate(warehouse.connect(common))
    env = {
        **settings_env(common, tmp_path),
        "PGPASSWORD": stoppable_postgres.password,
        "HEADRACE_SUMMARIZER_CATCH_UP_SECONDS": "1",
    }
    writers = ("loader", "summarizer")
    pipeline = LocalPipeline(tmp_path / "pipeline", env, free_port_block())
    pipeline.start(writers)
    try:
        pipeline.wait_ready(writers)
        watch: Monitoring = monitoring_of({s: f"127.0.0.1:{pipeline.port(s)}" for s in writers}, [])
        prom = watch.prometheus
        up = "headrace_catalog_up == 1"
        prom.wait(lambda: len(prom.query(up)) == 2, "both writers see the catalog")
        assert not watch.firing("HeadraceCatalogUnreachable")

        stoppable_postgres.stop()
        prom.wait(
            lambda: watch.firing("HeadraceCatalogUnreachable"),
            "HeadraceCatalogUnreachable firing",
            45,
        )
        assert {a["service"] for a in watch.firing("HeadraceCatalogUnreachable")} == {
            "summarizer"
        }  # the idle loader makes no catalog call, so it still shows its last one
        watch.alertmanager.wait(
            lambda: watch.received("HeadraceCatalogUnreachable"),
            "HeadraceCatalogUnreachable in Alertmanager",
            30,
        )
        assert pipeline.alive("summarizer"), "the summarizer survives a catalog outage"

        stoppable_postgres.start()
        prom.wait(
            lambda: (
                not watch.firing("HeadraceCatalogUnreachable")
                and prom.value('headrace_catalog_up{service="summarizer"}') == 1
            ),
            "HeadraceCatalogUnreachable resolved",
            45,
        )
        watch.alertmanager.wait(
            lambda: not watch.received("HeadraceCatalogUnreachable"),
            "the alert resolved in Alertmanager",
            30,
        )
        # The pager was told it fired, then that it resolved (send_resolved).
        watch.alertmanager.wait(
            lambda: watch.webhook.notifications("pager", "HeadraceCatalogUnreachable", "resolved"),
            "the resolution delivered to the pager webhook",
            30,
        )
        assert watch.webhook.notifications("pager", "HeadraceCatalogUnreachable", "firing")
    finally:
        pipeline.stop()
