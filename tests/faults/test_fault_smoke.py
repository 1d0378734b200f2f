"""The fault smoke in `make test`: every crash point once, every other fault kind, then I1-I11.

It runs on the local bucket, so it stays well inside `make test`'s budget: on gs:// (the emulator
and the fault proxy sharing the machine's two cores) the 18 faults every run starts with took
7-10 minutes against ~3 for these 20 locally. The bucket faults are covered in `make test` by
tests/faults/test_gcs_fault_proxy.py, and in full by `make faults` (gs:// by default).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.ports import free_port_block
from headrace.runtime.crash_points import POINTS
from tests.faults.suite import FaultSuite

pytestmark = pytest.mark.integration


@pytest.mark.timeout(900)
def test_fault_smoke(tmp_path: Path) -> None:
    base = free_port_block(4)
    infra = InfraSettings(
        state_dir=tmp_path / "infra",
        kafka_port=base,
        kafka_controller_port=base + 1,
        kafka_metrics_port=base + 3,
        kafka_heap="512m",
    )
    suite = FaultSuite(
        tmp_path / "run", seed=20261125, faults=20, infra=infra, wave_events=2_000, bucket="local"
    )
    summary = suite.run()
    Path("test-artifacts").mkdir(exist_ok=True)
    Path("test-artifacts/fault-smoke.json").write_text(json.dumps(summary, indent=2))

    assert summary["violations"] == [], json.dumps(summary, indent=2)
    assert summary["faults_injected"] >= 20
    assert set(suite.kinds) <= set(summary["faults_by_kind"])
    crash_points_hit = {e["target"] for e in summary["log"] if e["fault"] == "crash_point"}
    assert crash_points_hit == set(POINTS)
    assert {name.split()[0] for name in summary["invariants"]} == {f"I{i}" for i in range(1, 12)}
