"""deploy/k8s's monitoring parts: the Kafka metrics rules and Alertmanager are exact copies of
the files compose and the local brokers use, and the cluster's Prometheus finds both."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.alertmanager_server import ALERTMANAGER_CONFIG
from tests.deploy.prometheus_server import PROMETHEUS_DIR, REPO, yaml
from tests.deploy.test_k8s import OVERLAYS, build, of_kind

KAFKA_RULES = REPO / "infra" / "kafka" / "kafka-metrics.yml"
COPY_HINT = "copy the file into the ConfigMap in deploy/k8s/base (indented 4 spaces)"


def kubernetes_prometheus() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (PROMETHEUS_DIR / "prometheus-kubernetes.yml").read_text()
    )
    return loaded


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_configmaps_are_exact_copies(overlay: str) -> None:
    maps = of_kind(build(overlay), "ConfigMap")
    kafka = maps["headrace-kafka-metrics"]["data"]["kafka-metrics-config.yml"]
    assert kafka == KAFKA_RULES.read_text(), f"{KAFKA_RULES} changed: {COPY_HINT}"
    manager = maps["headrace-alertmanager"]["data"]["alertmanager.yml"]
    assert manager == ALERTMANAGER_CONFIG.read_text(), f"{ALERTMANAGER_CONFIG}: {COPY_HINT}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_sends_to_the_alertmanager_service(overlay: str) -> None:
    docs = build(overlay)
    deployment = of_kind(docs, "Deployment")["headrace-alertmanager"]
    service = of_kind(docs, "Service")["headrace-alertmanager"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "headrace-alertmanager"
    assert f"--config.file={mounts['config']}/alertmanager.yml" in container["args"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]
    namespace = service["metadata"]["namespace"]
    (manager,) = kubernetes_prometheus()["alerting"]["alertmanagers"]
    (target,) = [t for sc in manager["static_configs"] for t in sc["targets"]]
    assert target == f"headrace-alertmanager.{namespace}.svc:{port['port']}"


def test_prometheus_scrapes_the_strimzi_cluster_the_topics_belong_to() -> None:
    topics = of_kind(build(OVERLAYS[0]), "KafkaTopic").values()
    (cluster,) = {t["metadata"]["labels"]["strimzi.io/cluster"] for t in topics}
    (job,) = [j for j in kubernetes_prometheus()["scrape_configs"] if j["job_name"] == "kafka"]
    keep = {
        r["source_labels"][0]: r["regex"]
        for r in job["relabel_configs"]
        if r.get("action") == "keep"
    }
    assert keep == {
        "__meta_kubernetes_pod_label_strimzi_io_kind": "Kafka",
        "__meta_kubernetes_pod_label_strimzi_io_cluster": cluster,
        "__meta_kubernetes_pod_container_port_name": "tcp-prometheus",
    }


def test_the_kafka_resource_points_at_the_rules_configmap() -> None:
    for overlay in OVERLAYS:
        built = build(overlay)
        (kafka,) = of_kind(built, "Kafka").values()
        metrics = kafka["spec"]["kafka"]["metricsConfig"]
        assert metrics["type"] == "jmxPrometheusExporter"
        ref = metrics["valueFrom"]["configMapKeyRef"]
        assert ref["key"] in of_kind(built, "ConfigMap")[ref["name"]]["data"]
        topics = of_kind(built, "KafkaTopic").values()
        assert {t["metadata"]["labels"]["strimzi.io/cluster"] for t in topics} == {
            kafka["metadata"]["name"]
        }
