"""deploy/k8s, offline: every overlay builds, validates strictly, and agrees with the code.

Core kinds are checked with kubernetes-validate's bundled schemas (strict: unknown fields fail);
KEDA ScaledObjects and Strimzi Kafkas, KafkaNodePools and KafkaTopics against the CRDs those
projects install (vendored in crds/, unknown fields failing as `kubectl apply --validate=strict`
would fail them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from headrace.dev.local_pipeline import SERVICES
from headrace.kafka.topics import Replication, Topics, replication_for
from headrace.runtime.settings import CommonSettings
from tests.deploy import project_settings as code
from tests.deploy.prometheus_server import REPO, yaml

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")

K8S = REPO / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
CRDS = Path(__file__).parent / "crds"
# The oldest Kubernetes release the manifests are meant for, and the newest bundled.
K8S_VERSIONS = ("1.31.0", "1.37.0")
SECRETS = {"headrace-catalog": {"password"}, "headrace-account-key": {"salt"}}
SCALED = {"stager", "validator", "loader"}  # KEDA scales these on consumer lag
OPERATIONS_DOC = REPO / "docs" / "operations.md"


@cache
def build(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed (it brings kustomize)")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return tuple(d for d in yaml.safe_load_all(out.stdout) if d)


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def strict(schema: Any) -> Any:
    """A CRD's openAPIV3Schema with unknown fields refused (as the API server's strict mode)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def crd_validators() -> dict[tuple[str, str], Any]:
    found = {}
    for path in CRDS.glob("*.yaml"):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    schema = strict(version["schema"]["openAPIV3Schema"])
                    found[(f"{group}/{version['name']}", kind)] = jsonschema.Draft7Validator(schema)
    return found


def deployments(overlay: str) -> dict[str, dict[str, Any]]:
    return {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in of_kind(build(overlay), "Deployment").values()
        if d["metadata"]["name"].removeprefix("headrace-") in SERVICES
    }


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = c
    return result


def config(overlay: str) -> dict[str, str]:
    data: dict[str, str] = of_kind(build(overlay), "ConfigMap")["headrace"]["data"]
    return data


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_kinds_pass_strict_schema_validation(overlay: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    core = [d for d in build(overlay) if "." not in d["apiVersion"].split("/")[0]]
    assert {d["kind"] for d in core} >= {"Deployment", "Service", "PodDisruptionBudget"}
    for version in K8S_VERSIONS:
        for doc in core:
            kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_and_strimzi_resources_match_their_crds(overlay: str) -> None:
    custom = [d for d in build(overlay) if "." in d["apiVersion"].split("/")[0]]
    validators = crd_validators()
    assert {d["kind"] for d in custom} == {"ScaledObject", "KafkaTopic", "Kafka", "KafkaNodePool"}
    for doc in custom:
        key = (doc["apiVersion"], doc["kind"])
        assert key in validators, f"no vendored CRD serves {key}"
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validators[key].iter_errors(doc)]
        assert not errors, (doc["metadata"]["name"], errors)


def test_crd_check_refuses_what_the_api_server_would() -> None:
    validators = crd_validators()
    scaled = of_kind(build(OVERLAYS[0]), "ScaledObject")["headrace-loader"]
    bad = {**scaled, "spec": {**scaled["spec"], "maxReplicas": 6}}  # a typo'd field
    assert list(validators[("keda.sh/v1alpha1", "ScaledObject")].iter_errors(bad))
    topic = next(iter(of_kind(build(OVERLAYS[0]), "KafkaTopic").values()))
    bad = {**topic, "spec": {**topic["spec"], "partitions": 0}}
    assert list(validators[("kafka.strimzi.io/v1", "KafkaTopic")].iter_errors(bad))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_deployment_service_and_disruption_budget(overlay: str) -> None:
    docs = build(overlay)
    services, budgets = of_kind(docs, "Service"), of_kind(docs, "PodDisruptionBudget")
    found = deployments(overlay)
    assert set(found) == set(SERVICES)
    for name, deployment in found.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        port = code.service_port(name, _env(container(deployment)))
        service = services[f"headrace-{name}"]
        assert service["spec"]["selector"].items() <= labels.items()
        assert [p["port"] for p in service["spec"]["ports"]] == [port]
        budget = budgets[f"headrace-{name}"]["spec"]["selector"]["matchLabels"]
        assert budget.items() <= labels.items()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_run_the_service_with_probes_on_its_port(overlay: str) -> None:
    for name, deployment in deployments(overlay).items():
        c = container(deployment)
        assert code.cli_accepts(c["args"]) and c["args"] == ["run", name]
        port = code.service_port(name, {**config(overlay), **_env(c)})
        assert [p["containerPort"] for p in c["ports"]] == [port]
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        pod = deployment["spec"]["template"]
        assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        assert c["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_memory_matches_each_services_budget(overlay: str) -> None:
    budgets = documented_memory_budgets()
    assert set(budgets) == set(SERVICES)
    for name, deployment in deployments(overlay).items():
        resources = container(deployment)["resources"]
        assert resources["requests"]["memory"] == budgets[name], name
        assert resources["limits"]["memory"] == budgets[name], name
        assert "cpu" in resources["requests"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_configuration_is_settings_the_code_reads_and_secrets_stay_out(overlay: str) -> None:
    docs = build(overlay)
    assert not of_kind(docs, "Secret"), "Secrets are created outside git"
    code.check_values(config(overlay))
    assert not code.unknown_env(list(config(overlay)))
    for name, deployment in deployments(overlay).items():
        c = container(deployment)
        assert not code.unknown_env([e["name"] for e in c["env"]]), name
        code.check_values({e["name"]: e["value"] for e in c["env"] if "value" in e})
        for e in c["env"]:
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in SECRETS[ref["name"]], (name, ref)
            else:
                assert not re.search("PASSWORD|SALT|SECRET|TOKEN", e["name"]), (name, e)
    assert config(overlay)["HEADRACE_CATALOG_URL"].startswith("postgres:")
    assert "password" not in config(overlay)["HEADRACE_CATALOG_URL"]
    assert config(overlay)["HEADRACE_BUCKET_URL"].startswith("gs://")
    for name in ("loader", "summarizer"):
        env = {e["name"]: e for e in container(deployments(overlay)[name])["env"]}
        assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "headrace-catalog"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topics_are_strimzi_kafka_topics_with_the_codes_partitions(overlay: str) -> None:
    topics = Topics(config(overlay)["HEADRACE_TOPIC_PREFIX"])
    declared = {t["spec"]["topicName"]: t for t in of_kind(build(overlay), "KafkaTopic").values()}
    assert {n: t["spec"]["partitions"] for n, t in declared.items()} == topics.partitions()
    for name, wanted in topics.configs().items():
        assert wanted.items() <= declared[name]["spec"]["config"].items()
    clusters = {t["metadata"]["labels"]["strimzi.io/cluster"] for t in declared.values()}
    assert len(clusters) == 1
    (cluster,) = clusters
    bootstrap = config(overlay)["HEADRACE_BOOTSTRAP_SERVERS"]
    assert bootstrap.split(":")[0] == f"{cluster}-kafka-bootstrap"


def kafka_brokers(overlay: str) -> int:
    """Brokers of the overlay's Strimzi cluster: the replicas of its node pools with the role."""
    pools = of_kind(build(overlay), "KafkaNodePool").values()
    return sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])


def code_replication(overlay: str) -> Replication:
    """What `headrace topics` creates on the overlay's cluster with the settings' defaults."""
    defaults = CommonSettings.model_fields
    return replication_for(
        kafka_brokers(overlay),
        defaults["topic_replication_factor"].default,
        defaults["topic_min_insync_replicas"].default,
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_kafka_cluster_is_three_kraft_nodes_replicated_as_the_code_wants(overlay: str) -> None:
    docs = build(overlay)
    (kafka,) = of_kind(docs, "Kafka").values()
    pools = of_kind(docs, "KafkaNodePool").values()
    assert all(
        p["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"] for p in pools
    )
    assert {r for p in pools for r in p["spec"]["roles"]} == {"controller", "broker"}
    assert kafka_brokers(overlay) == 3
    wanted = code_replication(overlay)
    assert (wanted.factor, wanted.min_insync) == (3, 2)
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == wanted.factor
    assert config["min.insync.replicas"] == wanted.min_insync
    assert config["offsets.topic.replication.factor"] == wanted.factor
    assert config["transaction.state.log.replication.factor"] == wanted.factor
    assert config["transaction.state.log.min.isr"] == wanted.min_insync
    assert config["auto.create.topics.enable"] is False
    listeners = {(x["port"], x["tls"]) for x in kafka["spec"]["kafka"]["listeners"]}
    assert (int(config_map_port(overlay)), False) in listeners


def config_map_port(overlay: str) -> str:
    return config(overlay)["HEADRACE_BOOTSTRAP_SERVERS"].rsplit(":", 1)[1]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_topics_are_replicated_as_the_code_creates_them(overlay: str) -> None:
    wanted = code_replication(overlay)
    for topic in of_kind(build(overlay), "KafkaTopic").values():
        name = topic["metadata"]["name"]
        assert topic["spec"]["replicas"] == wanted.factor, name
        assert topic["spec"]["config"]["min.insync.replicas"] == str(wanted.min_insync), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_the_consumers_on_lag_capped_at_the_partition_count(overlay: str) -> None:
    docs = build(overlay)
    topics = Topics(config(overlay)["HEADRACE_TOPIC_PREFIX"])
    partitions = topics.partitions()
    reads = {
        "stager": {topics.raw, topics.error},
        "validator": {topics.raw},
        "loader": {topics.validated},
    }
    scaled = {
        s["spec"]["scaleTargetRef"]["name"].removeprefix("headrace-"): s["spec"]
        for s in of_kind(docs, "ScaledObject").values()
    }
    assert set(scaled) == SCALED
    for name, spec in scaled.items():
        deployment = deployments(overlay)[name]
        assert "replicas" not in deployment["spec"], f"KEDA owns {name}'s replica count"
        triggers = spec["triggers"]
        assert {t["type"] for t in triggers} == {"kafka"}
        assert {t["metadata"]["topic"] for t in triggers} == reads[name]
        for t in triggers:
            meta = t["metadata"]
            assert meta["consumerGroup"] == code.service_default(name, "group_id")
            assert meta["bootstrapServers"] == config(overlay)["HEADRACE_BOOTSTRAP_SERVERS"]
            assert int(meta["lagThreshold"]) > 0
        assert spec["maxReplicaCount"] == max(partitions[t] for t in reads[name])
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]


def documented_memory_budgets() -> dict[str, str]:
    """The `| service | memory budget | ...` table of docs/operations.md."""
    rows = re.findall(r"^\| `?(\w+)`? \| (\d+(?:Mi|Gi)) \|", OPERATIONS_DOC.read_text(), re.M)
    return {name: memory for name, memory in rows if name in SERVICES}


def _env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c.get("env", []) if "value" in e}
