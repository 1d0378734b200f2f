"""`headrace stack` for real: up, a replay of 2,000 events, the reconciliation, Prometheus's
targets, Alertmanager, and down leaving no process behind.

Everything runs on free ports from a state folder of the test's own, so it can run beside a
stack, a demo or other test sessions.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from headrace.cli.report_view import current_counts
from headrace.dev import compose_file
from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.ports import free_port_block
from headrace.dev.sample_events import generate
from headrace.dev.stack import Stack
from headrace.dev.stack_config import StackSettings
from headrace.runtime.settings import CommonSettings

HEADRACE = str(Path(sys.executable).parent / "headrace")
EVENTS = 2_000


def _ports(base: int) -> dict[str, str]:
    """Kafka on base..+5, then the emulator, PostgreSQL, Prometheus, Alertmanager, the brokers'
    metrics at +10/+20/+30 and the services at +31 ... +35."""
    return {
        "HEADRACE_INFRA_KAFKA_PORT": str(base),
        "HEADRACE_INFRA_KAFKA_CONTROLLER_PORT": str(base + 1),
        "HEADRACE_INFRA_GCS_PORT": str(base + 6),
        "HEADRACE_INFRA_POSTGRES_PORT": str(base + 7),
        "HEADRACE_STACK_PROMETHEUS_PORT": str(base + 8),
        "HEADRACE_STACK_ALERTMANAGER_PORT": str(base + 9),
        "HEADRACE_INFRA_KAFKA_METRICS_PORT": str(base + 10),
        "HEADRACE_STACK_SERVICE_PORT_BASE": str(base + 30),
    }


@pytest.fixture
def stack_env() -> Iterator[dict[str, str]]:
    # Not under pytest's temp folder, which only root may enter: as root, PostgreSQL runs as
    # nobody, who must reach its data folder.
    state = Path(tempfile.mkdtemp(prefix="headrace-stack-"))
    state.chmod(0o755)
    env = {**os.environ, **_ports(free_port_block(40)), "HEADRACE_STACK_STATE_DIR": str(state)}
    yield env
    shutil.rmtree(state, ignore_errors=True)


def _headrace(env: dict[str, str], *args: str, timeout: float = 240) -> str:
    done = subprocess.run(
        [HEADRACE, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"headrace {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _stack(env: dict[str, str]) -> Stack:
    """The same stack as the commands see, built from the same environment."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return Stack(StackSettings(), compose_file.load(), InfraSettings())
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body: bytes = r.read()
            return body
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def _targets_up(prometheus: str) -> dict[str, str]:
    """scrape target (job/instance) -> its `up` value."""
    body = _get(f"{prometheus}/api/v1/query?query=up")
    if body is None:
        return {}
    result = json.loads(body)["data"]["result"]
    return {f"{r['metric']['job']}/{r['metric']['instance']}": r["value"][1] for r in result}


@pytest.mark.timeout(420)
def test_stack_up_replay_reconcile_monitor_down(stack_env: dict[str, str]) -> None:
    stack = _stack(stack_env)
    pids: list[int] = []
    try:
        out = _headrace(stack_env, "stack", "up")
        assert "replay" in out and "grafana" in out
        pids = stack.pids()
        # PostgreSQL, the emulator, three Kafka nodes, five services, Alertmanager, Prometheus.
        assert len(pids) == 12, stack.rows()

        sample = stack.home / "sample.jsonl"
        generate(sample, EVENTS)
        client = {**stack_env, **stack.client_env()}
        assert f"{EVENTS:,} events acknowledged" in _headrace(client, "replay", str(sample))
        _headrace(stack_env, "stack", "wait", "--timeout", "150", timeout=180)

        saved = dict(os.environ)
        os.environ.update(client)
        try:
            counts, _ = current_counts(CommonSettings())
        finally:
            os.environ.clear()
            os.environ.update(saved)
        assert counts.events_in == EVENTS and counts.holds is True, counts
        assert counts.placed == EVENTS

        prometheus = f"http://127.0.0.1:{stack.settings.prometheus_port}"
        expected = 5 + len(stack.kafka_nodes)
        deadline = time.monotonic() + 60  # compose's scrape interval is 15 s
        while True:
            up = _targets_up(prometheus)
            if len(up) == expected and set(up.values()) == {"1"}:
                break
            assert time.monotonic() < deadline, up
            time.sleep(2)
        alertmanager = f"http://127.0.0.1:{stack.settings.alertmanager_port}"
        assert _get(f"{alertmanager}/-/ready") is not None
    finally:
        _headrace(stack_env, "stack", "down", timeout=180)
    assert pids and [p for p in pids if _alive(p)] == []
    assert stack.pids() == []


def test_a_failed_up_is_one_line_that_names_down(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: PostgreSQL then runs as nobody, who cannot enter pytest's folder")
    env = {**os.environ, **_ports(free_port_block(40)), "HEADRACE_STACK_STATE_DIR": str(tmp_path)}
    done = subprocess.run(
        [HEADRACE, "stack", "up"], env=env, capture_output=True, text=True, timeout=120
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1, done.stderr
    assert "nobody" in lines[0] and "`headrace stack down` stops what started" in lines[0]
    assert _stack(env).pids() == []
