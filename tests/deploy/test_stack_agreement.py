"""docker-compose.yml and `headrace stack` agree: every compose service has a local component,
every HEADRACE_* variable compose sets reaches the local service with its addresses made local,
and the ports compose publishes are the stack's (or moved, with the reason in MOVED_PORTS).

No process starts: the stack is built from the parsed file and asked. Each check is also run
on a mutated copy of the file, to show that it fails when compose gains what the stack lacks.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from headrace.dev import compose_file
from headrace.dev.infra.config import InfraSettings
from headrace.dev.local_pipeline import SERVICES
from headrace.dev.stack import LOCAL, MOVED_PORTS, Stack
from headrace.dev.stack_config import StackSettings
from headrace.runtime.errors import OperatorError
from tests.deploy.test_compose import COMPOSE, headrace_services


def compose() -> dict[str, Any]:
    return compose_file.load(COMPOSE)


def stack_of(parsed: dict[str, Any]) -> Stack:
    # The defaults, not the shell's HEADRACE_STACK_* / HEADRACE_INFRA_*: the documented layout.
    defaults = {"_env_prefix": "HEADRACE_UNSET_"}
    return Stack(StackSettings(**defaults), parsed, InfraSettings(**defaults))  # type: ignore[arg-type]


def compose_hosts_left(parsed: dict[str, Any], value: str) -> list[str]:
    """Compose hostnames still named in a local value (`kafka-1:9092`, `host=postgres`)."""
    names = "|".join(re.escape(n) for n in parsed["services"])
    return re.findall(rf"(?<![\w.-])(?:{names}):\d+|\bhost=(?:{names})\b", value)


def env_disagreements(parsed: dict[str, Any]) -> list[str]:
    stack = stack_of(parsed)
    found = []
    for name in (n for n in parsed["services"] if "build" in parsed["services"][n]):
        theirs = compose_file.environment(parsed, name)
        ours = stack.service_env(name)
        for key in (k for k in theirs if k.startswith("HEADRACE_")):
            if key not in ours:
                found.append(f"{name}: {key} not set")
            elif left := compose_hosts_left(parsed, ours[key]):
                found.append(f"{name}: {key}={ours[key]} still names {left}")
    return found


def port_disagreements(parsed: dict[str, Any]) -> list[str]:
    stack = stack_of(parsed)
    found = []
    for name in parsed["services"]:
        for container, host in compose_file.published_ports(parsed, name).items():
            if name in MOVED_PORTS or LOCAL[name] is LOCAL["grafana"]:
                continue
            local = stack.local_port(name, container)
            if local != host:
                found.append(f"{name}: compose publishes {host}, the stack serves {local}")
    return found


def test_every_compose_service_maps_to_a_local_component() -> None:
    parsed = compose()
    assert set(parsed["services"]) <= set(LOCAL)
    rows = {row.component for row in stack_of(parsed).rows()}
    assert rows == set(parsed["services"])
    assert set(headrace_services()) == {"topics", *SERVICES}


def test_a_service_compose_adds_is_refused_until_the_table_knows_it() -> None:
    parsed = compose()
    parsed["services"]["schema-registry"] = {"image": "apicurio/apicurio-registry:3.0.0"}
    with pytest.raises(OperatorError, match=r"schema-registry.*LOCAL"):
        stack_of(parsed)


def test_every_headrace_variable_reaches_the_local_service_translated() -> None:
    parsed = compose()
    assert env_disagreements(parsed) == []
    stack = stack_of(parsed)
    loader = stack.service_env("loader")
    assert loader["HEADRACE_BOOTSTRAP_SERVERS"] == stack.kafka.bootstrap
    assert loader["HEADRACE_GCS_ENDPOINT"] == stack.infra.gcs_endpoint
    assert f"host=127.0.0.1 port={stack.infra.postgres_port}" in loader["HEADRACE_CATALOG_URL"]
    assert loader["PGPASSWORD"] == stack.infra.postgres_password
    assert loader["HEADRACE_LOADER_PORT"] == str(stack.pipeline.port("loader"))
    data_dir = stack.service_env("summarizer")["HEADRACE_SUMMARIZER_DATA_DIR"]
    assert data_dir.startswith(str(stack.home / "volumes" / "summarizer-data"))


def test_a_variable_compose_adds_reaches_the_stack() -> None:
    parsed = compose()
    parsed["services"]["producer"]["environment"]["HEADRACE_LOG_LEVEL"] = "DEBUG"
    assert stack_of(parsed).service_env("producer")["HEADRACE_LOG_LEVEL"] == "DEBUG"


def test_an_address_the_stack_does_not_serve_is_refused() -> None:
    parsed = compose()
    env = parsed["services"]["validator"]["environment"]
    env["HEADRACE_SCHEMA_REGISTRY_URL"] = "http://gcs:8080"
    with pytest.raises(OperatorError, match="gcs:8080"):
        env_disagreements(parsed)


def test_the_check_sees_a_compose_host_left_in_a_value() -> None:
    parsed = compose()
    assert compose_hosts_left(parsed, "kafka-2:9092,127.0.0.1:1") == ["kafka-2:9092"]
    assert compose_hosts_left(parsed, "dbname=x host=postgres") == ["host=postgres"]
    assert compose_hosts_left(parsed, "dbname=x host=127.0.0.1 port=1") == []


def test_published_ports_are_the_stack_ports() -> None:
    parsed = compose()
    assert port_disagreements(parsed) == []
    stack = stack_of(parsed)
    published = compose_file.published_ports(parsed, "gcs")
    assert stack.local_port("gcs", next(iter(published))) == stack.infra.gcs_port


def test_a_port_compose_publishes_elsewhere_is_a_disagreement() -> None:
    parsed = copy.deepcopy(compose())
    parsed["services"]["producer"]["ports"] = ["18081:8081"]
    assert port_disagreements(parsed) == [
        "producer: compose publishes 18081, the stack serves 8081"
    ]


def test_prometheus_scrapes_only_what_the_stack_runs() -> None:
    stack = stack_of(compose())
    yaml = compose_file.yaml_module()
    config = yaml.safe_load((COMPOSE.parent / "deploy/prometheus/prometheus.yml").read_text())
    targets = [
        t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    ]
    local = [stack.local_address(t) for t in targets]
    assert len(set(local)) == len(targets) and all(t.startswith("127.0.0.1:") for t in local)


def test_compose_variables_take_the_shell_value_or_the_default() -> None:
    value = "${CATALOG_PASSWORD:-headrace-laptop}"
    assert compose_file.interpolate(value, {}) == "headrace-laptop"
    assert compose_file.interpolate(value, {"CATALOG_PASSWORD": ""}) == "headrace-laptop"
    assert compose_file.interpolate(value, {"CATALOG_PASSWORD": "s3cret"}) == "s3cret"
    assert compose_file.interpolate("a $$ b", {}) == "a $ b"


def test_a_missing_compose_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(OperatorError, match="runs from a checkout"):
        compose_file.load(tmp_path / "docker-compose.yml")
