"""deploy/alertmanager/alertmanager.yml: amtool's checks, its routes, and its inhibition on a real
Alertmanager; the Kubernetes copy of it."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from headrace.dev.infra.ports import free_port_block
from tests.deploy.alertmanager_server import (
    ALERTMANAGER_CONFIG,
    AlertmanagerServer,
    alertmanager_tool,
)
from tests.deploy.prometheus_server import ALERTS, yaml


def amtool(*args: str) -> str:
    out = subprocess.run(
        [alertmanager_tool("amtool"), *args], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def route(*labels: str) -> str:
    return amtool("config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels)


def test_amtool_accepts_the_configuration() -> None:
    out = amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert "SUCCESS" in out and "2 inhibit rules" in out


def test_critical_pages_and_everything_else_goes_to_the_default_receiver() -> None:
    assert route("severity=critical", "alertname=KafkaBrokerDown").split() == ["pager"]
    assert route("severity=warning", "alertname=HeadraceConsumerLagGrowing").split() == ["default"]
    assert route("alertname=Unlabelled").split() == ["default"]


def test_every_alert_rule_has_a_severity_that_routes() -> None:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"] if "alert" in r):
        receiver = {"critical": "pager", "warning": "default"}[rule["labels"]["severity"]]
        assert route(*(f"{k}={v}" for k, v in rule["labels"].items())).split() == [receiver]


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[AlertmanagerServer]:
    server = AlertmanagerServer(tmp_path, free_port_block(1))
    server.start()
    yield server
    server.stop()


def alert(name: str, **labels: str) -> dict[str, object]:
    return {"labels": {"alertname": name, **labels}, "annotations": {"summary": name}}


def inhibited(server: AlertmanagerServer) -> dict[str, bool]:
    return {a["labels"]["alertname"]: bool(a["status"]["inhibitedBy"]) for a in server.alerts()}


def test_a_critical_alert_holds_back_the_warnings_it_explains(
    alertmanager: AlertmanagerServer,
) -> None:
    alertmanager.post(
        [
            alert("KafkaBrokerDown", severity="critical", system="kafka", instance="k1"),
            alert("KafkaUnderReplicatedPartitions", severity="warning", system="kafka"),
            alert("HeadraceRetriesSpiking", severity="warning", service="validator"),
            alert("HeadraceCatalogUnreachable", severity="critical", component="loader"),
            alert("HeadraceServiceRestarting", severity="warning", component="loader"),
            alert("HeadraceDataStale", severity="critical"),
        ]
    )
    alertmanager.wait(lambda: len(alertmanager.alerts()) == 6, "six alerts")
    expected = {
        "KafkaBrokerDown": False,
        "KafkaUnderReplicatedPartitions": True,
        "HeadraceRetriesSpiking": True,
        "HeadraceCatalogUnreachable": False,
        "HeadraceServiceRestarting": True,
        "HeadraceDataStale": False,  # critical alerts are never held back
    }
    alertmanager.wait(lambda: inhibited(alertmanager) == expected, "inhibition", 10)


def test_a_service_alert_holds_back_only_its_own_components_warnings(
    alertmanager: AlertmanagerServer,
) -> None:
    alertmanager.post(
        [
            alert("HeadraceServiceDown", severity="critical", component="stager"),
            alert("HeadraceServiceRestarting", severity="warning", component="loader"),
            alert("HeadraceErrorRatioHigh", severity="warning"),
        ]
    )
    alertmanager.wait(lambda: len(alertmanager.alerts()) == 3, "three alerts")
    assert inhibited(alertmanager) == {
        "HeadraceServiceDown": False,
        "HeadraceServiceRestarting": False,
        "HeadraceErrorRatioHigh": False,
    }
