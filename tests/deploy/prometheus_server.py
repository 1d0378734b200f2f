"""A real Prometheus (Debian's package) for tests: started on a free port, queried over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.local_server import LocalServer

# PyYAML and jsonschema come with the dev dependency kubernetes-validate.
yaml = pytest.importorskip("yaml", reason="PyYAML (a dev dependency) is not installed")

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "headrace.json"


def tool(name: str) -> str:
    """Path of a Prometheus tool, or skip: CI installs the Debian package `prometheus`."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed (apt-get install prometheus)")
    return found


@dataclass
class PrometheusServer(LocalServer):
    NAME = "prometheus"
    home: Path
    port: int
    targets: dict[str, str]  # component -> host:port
    kafka: list[str] = field(default_factory=list)  # brokers' metrics agents, host:port
    alertmanager: str | None = None  # host:port to send alerts to
    rules: Path = ALERTS
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        jobs: list[dict[str, Any]] = [
            {
                "job_name": "headrace",
                "static_configs": [
                    {"targets": [target], "labels": {"component": component}}
                    for component, target in self.targets.items()
                ],
            }
        ]
        if self.kafka:
            jobs.append({"job_name": "kafka", "static_configs": [{"targets": self.kafka}]})
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(self.rules)],
            "scrape_configs": jobs,
        }
        if self.alertmanager:
            targets = [{"targets": [self.alertmanager]}]
            config["alerting"] = {"alertmanagers": [{"static_configs": targets}]}
        path = self.home / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.launch(
            [
                tool("prometheus"),
                f"--config.file={path}",
                f"--storage.tsdb.path={self.home / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ]
        )

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector; a failing query raises with Prometheus's error."""
        body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert body is not None, f"no answer to {expr}"
        answer = json.loads(body)
        assert answer["status"] == "success", f"{expr}: {answer}"
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str) -> float:
        result = self.query(expr)
        assert len(result) == 1, f"{expr}: {result}"
        return float(result[0]["value"][1])

    def alerts(self, state: str) -> list[dict[str, str]]:
        return [r["metric"] for r in self.query(f'ALERTS{{alertstate="{state}"}}')]


def rule_exprs() -> dict[str, str]:
    """Every rule in alerts.yml: alert or recorded name -> expression."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {r.get("alert") or r["record"]: r["expr"] for g in groups for r in g["rules"]}


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [t["expr"] for p in panels for t in p.get("targets", [])]


def rules_with_short_durations(target: Path, seconds: int) -> Path:
    """A copy of alerts.yml whose every `for:` is `seconds`, the expressions unchanged."""
    groups = yaml.safe_load(ALERTS.read_text())
    for group in groups["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{seconds}s"
    target.write_text(yaml.safe_dump(groups))
    return target
