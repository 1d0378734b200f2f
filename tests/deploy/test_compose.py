"""docker-compose.yml, offline: the Compose specification's schema, and agreement with the code.

No Docker engine here, so the file is checked for what `docker compose up` would trip over: the
schema, commands the image does not have, settings the code does not read, ports that do not
match what a service listens on, and Prometheus/Grafana wiring that points at nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from headrace.dev.local_pipeline import SERVICES
from headrace.kafka.topics import Replication, replication_for
from headrace.runtime.settings import CommonSettings
from tests.deploy import project_settings as code
from tests.deploy.prometheus_server import DASHBOARD, PROMETHEUS_DIR, REPO, yaml

validators = pytest.importorskip("jsonschema.validators", reason="jsonschema is not installed")

COMPOSE = REPO / "docker-compose.yml"
GRAFANA = REPO / "deploy" / "grafana"
SCHEMAS = REPO / "tests" / "deploy" / "schemas"  # vendored; see the README there


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def headrace_services() -> dict[str, dict[str, Any]]:
    """The services that run the headrace image (built from this repository)."""
    return {n: s for n, s in compose()["services"].items() if "build" in s}


def kafka_nodes() -> dict[str, dict[str, str]]:
    """The Kafka containers, each with its environment."""
    return {
        n: {k: str(v) for k, v in s["environment"].items()}
        for n, s in compose()["services"].items()
        if s.get("image", "").startswith("apache/kafka:")
    }


def topic_replication(env: dict[str, str], brokers: int) -> Replication:
    """What `headrace topics` with this environment creates on `brokers` brokers."""
    defaults = CommonSettings.model_fields
    factor = env.get(
        "HEADRACE_TOPIC_REPLICATION_FACTOR", defaults["topic_replication_factor"].default
    )
    min_insync = env.get(
        "HEADRACE_TOPIC_MIN_INSYNC_REPLICAS", defaults["topic_min_insync_replicas"].default
    )
    return replication_for(
        brokers,
        factor if factor == "auto" else int(factor),
        min_insync if min_insync == "auto" else int(min_insync),
    )


def test_three_kafka_nodes_form_one_quorum_replicated_as_the_code_wants() -> None:
    nodes = kafka_nodes()
    assert len(nodes) == 3
    assert {env["KAFKA_NODE_ID"] for env in nodes.values()} == {"1", "2", "3"}
    assert len({env["CLUSTER_ID"] for env in nodes.values()}) == 1
    voters = ",".join(f"{env['KAFKA_NODE_ID']}@{n}:9093" for n, env in sorted(nodes.items()))
    topics_env = {k: str(v) for k, v in compose()["services"]["topics"]["environment"].items()}
    wanted = topic_replication(topics_env, len(nodes))
    assert (wanted.factor, wanted.min_insync) == (3, 2)
    for name, env in nodes.items():
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", name
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == voters, name
        assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"], name
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092", name
        # Topics created without an explicit replication, and the internal ones, as ours.
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == str(wanted.factor), name
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == str(wanted.min_insync), name
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == str(wanted.factor), name
        assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == str(wanted.factor), name
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == str(wanted.min_insync), name
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", name


def test_every_headrace_container_bootstraps_from_every_node_and_waits_for_them() -> None:
    nodes = kafka_nodes()
    addresses = {f"{n}:9092" for n in nodes}
    for name, service in headrace_services().items():
        env = {k: str(v) for k, v in service["environment"].items()}
        assert set(env["HEADRACE_BOOTSTRAP_SERVERS"].split(",")) == addresses, name
        waits = {n for n, d in service["depends_on"].items() if d["condition"] == "service_healthy"}
        assert set(nodes) <= waits, name


def test_compose_file_matches_the_compose_specification() -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    validator = validators.validator_for(schema)(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose())]
    assert not errors


def test_laptop_stack_has_every_part() -> None:
    services = compose()["services"]
    assert set(SERVICES) <= set(headrace_services())
    for part in (*kafka_nodes(), "gcs", "postgres", "prometheus", "grafana"):
        image = services[part]["image"]
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest" and re.search(r"\d", tag), image


def test_every_command_is_one_the_image_has() -> None:
    for name, service in headrace_services().items():
        assert code.cli_accepts(service["command"]), (name, service["command"])
    for name in SERVICES:
        assert headrace_services()[name]["command"] == ["run", name]


def test_every_variable_is_a_setting_the_code_reads() -> None:
    for name, service in headrace_services().items():
        env = {k: str(v) for k, v in service.get("environment", {}).items()}
        assert not code.unknown_env(list(env)), (name, code.unknown_env(list(env)))
        code.check_values({k: v for k, v in env.items() if "${" not in v})


def test_catalog_on_postgres_and_bucket_on_gcs() -> None:
    services = compose()["services"]
    postgres = services["postgres"]["environment"]
    for name in ("loader", "summarizer"):
        env = services[name]["environment"]
        url = env["HEADRACE_CATALOG_URL"]
        assert url.startswith("postgres:"), url
        assert "password" not in url, "the password travels in PGPASSWORD, not in the URL"
        assert f"user={postgres['POSTGRES_USER']}" in url
        assert f"dbname={postgres['POSTGRES_DB']}" in url
        assert "host=postgres" in url
        assert env["PGPASSWORD"] == postgres["POSTGRES_PASSWORD"]
        assert env["HEADRACE_BUCKET_URL"].startswith("gs://")
        assert env["HEADRACE_GCS_ENDPOINT"].startswith("http://gcs:")
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_ports_and_health_checks_match_what_each_service_listens_on() -> None:
    for name in SERVICES:
        service = headrace_services()[name]
        env = {k: str(v) for k, v in service["environment"].items()}
        port = code.service_port(name, env)
        assert service["ports"] == [f"{port}:{port}"], name
        probe = " ".join(service["healthcheck"]["test"])
        assert f"http://127.0.0.1:{port}/healthz" in probe, name
        assert env["HEADRACE_HTTP_HOST"] == "0.0.0.0", "reachable from other containers"
        conditions = {d["condition"] for d in service["depends_on"].values()}
        assert conditions <= {"service_healthy", "service_completed_successfully"}, name


def test_prometheus_scrapes_every_service_on_its_port() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert set(jobs) == {"headrace", "kafka"}
    job = jobs["headrace"]
    targets = {
        sc["labels"]["component"]: target
        for sc in job["static_configs"]
        for target in sc["targets"]
    }
    expected = {}
    for name in SERVICES:
        env = {k: str(v) for k, v in headrace_services()[name]["environment"].items()}
        expected[name] = f"{name}:{code.service_port(name, env)}"
    assert targets == expected
    assert config["rule_files"] == ["alerts.yml"]
    mounts = compose()["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in mounts


def test_every_kafka_node_carries_the_metrics_agent_that_prometheus_scrapes() -> None:
    services = compose()["services"]
    fetch = services["kafka-metrics-agent"]
    nodes = sorted(name for name in services if re.fullmatch(r"kafka-\d+", name))
    assert len(nodes) == 3
    ports = set()
    for name in nodes:
        kafka = services[name]
        agent = re.fullmatch(r"-javaagent:(\S+)=(\d+):(\S+)", kafka["environment"]["KAFKA_OPTS"])
        assert agent, kafka["environment"]["KAFKA_OPTS"]
        jar, port, rules = agent.groups()
        ports.add(port)
        mounts = {src: dst for src, dst, *_ in (v.split(":") for v in kafka["volumes"])}
        # The jar comes from the one-shot service's volume, which Maven fills from the pom.
        jar_dir = jar.rsplit("/", 1)[0]
        volume = next(source for source, target in mounts.items() if target == jar_dir)
        assert f"{volume}:/agent" in fetch["volumes"]
        assert jar.endswith("/jmx_prometheus_javaagent.jar")
        condition = kafka["depends_on"]["kafka-metrics-agent"]["condition"]
        assert condition == "service_completed_successfully"
        # The rules are the same file the local brokers use.
        assert mounts["./infra/kafka/kafka-metrics.yml"] == rules
    assert "./infra/kafka:/infra:ro" in fetch["volumes"]
    assert "-DoutputDirectory=/agent" in fetch["command"]
    assert "-Dmdep.stripVersion=true" in fetch["command"]
    assert "/infra/metrics-agent.pom.xml" in fetch["command"]
    (port,) = ports
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "kafka"]
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"{name}:{port}" for name in nodes]


def test_prometheus_sends_alerts_to_the_alertmanager_service() -> None:
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    (target,) = [t for sc in alertmanagers["static_configs"] for t in sc["targets"]]
    host, port = target.split(":")
    service = compose()["services"][host]
    assert service["image"].startswith("prom/alertmanager:")
    assert f"{port}:{port}" in service["ports"]
    assert "./deploy/alertmanager:/etc/alertmanager:ro" in service["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in service["command"]


def test_grafana_provisions_the_dashboard_on_the_prometheus_datasource() -> None:
    services = compose()["services"]
    mounts = dict(v.rsplit(":", 2)[:2] for v in services["grafana"]["volumes"] if ":ro" in v)
    provisioning = GRAFANA / "provisioning"
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["url"] == "http://prometheus:9090"
    assert "9090:9090" in services["prometheus"]["ports"]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "headrace.yml").read_text())[
        "providers"
    ]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    dashboard = json.loads(DASHBOARD.read_text())
    uids = {
        t["datasource"]["uid"]
        for p in dashboard["panels"]
        for t in [p, *p.get("targets", [])]
        if "datasource" in t
    }
    assert uids == {datasource["uid"]}


def test_dashboard_has_a_row_for_each_monitoring_question() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == ["Flow", "Lag", "Freshness", "Errors by reason", "Storage", "Service health"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    assert all(p.get("targets") for p in panels if p["type"] != "row")
