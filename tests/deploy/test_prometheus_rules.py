"""The alert rules, offline: promtool's checks and unit tests, and a runbook entry per alert."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from headrace.dev.local_pipeline import SERVICES
from tests.deploy.prometheus_server import ALERTS, PROMETHEUS_DIR, REPO, tool, yaml

OPERATIONS_DOC = REPO / "docs" / "operations.md"


def promtool(*args: str) -> str:
    out = subprocess.run(
        [tool("promtool"), *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def alerts() -> list[dict[str, object]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]


def test_rules_and_scrape_configs_pass_promtool_checks() -> None:
    promtool("check", "rules", "alerts.yml")
    promtool("check", "config", "prometheus.yml")


def test_kubernetes_scrape_config_passes_promtool_and_keys_on_the_pods_annotations(
    tmp_path: Path,
) -> None:
    """Debian's Prometheus is built without Kubernetes discovery, so promtool checks the file with
    its discovery swapped for a static target: everything else (relabelling) is checked as is."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus-kubernetes.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert set(jobs) == {"headrace", "kafka"}
    for each in jobs.values():
        assert each["kubernetes_sd_configs"][0]["role"] == "pod"
        each["static_configs"] = [{"targets": ["127.0.0.1:1"]}]
        del each["kubernetes_sd_configs"]
    config["rule_files"] = [str(ALERTS)]
    job = jobs["headrace"]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    promtool("check", "config", str(tmp_path / "prometheus.yml"))
    relabel = {label for r in job["relabel_configs"] for label in r["source_labels"]}
    annotations = {"scrape", "port", "path"}
    assert {f"__meta_kubernetes_pod_annotation_prometheus_io_{a}" for a in annotations} <= relabel
    for name in SERVICES:
        manifest = (REPO / "deploy" / "k8s" / "base" / f"{name}.yaml").read_text()
        deployment = next(d for d in yaml.safe_load_all(manifest) if d["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["metadata"]
        assert {f"prometheus.io/{a}" for a in annotations} <= set(pod["annotations"])
        assert pod["labels"]["app.kubernetes.io/component"] == name


def test_alert_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")


def test_every_alert_is_unit_tested_firing() -> None:
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for t in tests
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert fired == {a["alert"] for a in alerts()}


def test_every_alert_has_a_runbook_entry() -> None:
    doc = OPERATIONS_DOC.read_text()
    headings = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.+)$", doc, re.M)
    }
    for alert in alerts():
        annotations = alert["annotations"]
        assert isinstance(annotations, dict)
        anchor = annotations["runbook_url"].split("#")[1]
        assert annotations["runbook_url"] == f"docs/operations.md#{anchor}"
        assert anchor == str(alert["alert"]).lower()
        assert anchor in headings, f"docs/operations.md has no section {alert['alert']}"
        labels = alert["labels"]
        assert isinstance(labels, dict) and labels["severity"] in ("warning", "critical")
