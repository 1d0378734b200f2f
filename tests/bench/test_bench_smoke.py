"""The benchmark suite at smoke scale: every figure is measured, positive, and the JSON written.

Targets are not asserted: a CI machine's speed says nothing about the code (docs/performance.md
has the full run). This checks that the suite itself keeps working: broker, services, floors,
the faust and Quix Streams programs, the pipeline, the queries.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]  # `python -m bench` runs from the checkout

# Figure families every run produces (sizes in the query keys depend on the scale).
EXPECTED = (
    *(f"stage.{s}{k}" for s in ("producer", "validator", "loader", "stager") for k in ("", ".cpu")),
    *(f"versus.{f}{k}" for f in ("faust", "quix") for k in ("", ".cpu")),
    "e2e.backlog",
    *(f"rss.{s}" for s in ("producer", "producer_replay", "stager", "validator", "loader")),
    "rss.summarizer",
    "freshness.p50",
    "freshness.p99",
    "backfill.rate",
    "backfill.rss_loader",
    "backfill.files_per_100k",
    "query.star_join.",
    "query.dashboard.",
    "query.dashboard_lake.",
)


@pytest.mark.timeout(900)
def test_smoke_scale_produces_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    cmd = [sys.executable, "-m", "bench", "--scale", "smoke", "--root", str(tmp_path)]
    run = subprocess.run(
        [*cmd, "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=880
    )
    assert out.exists(), (
        f"no JSON result; exit {run.returncode}\n{run.stdout[-4000:]}{run.stderr[-4000:]}"
    )
    result = json.loads(out.read_text())
    figures = {f["key"]: f for f in result["figures"]}
    failed = {k: f["error"] for k, f in figures.items() if f["error"]}
    assert not failed, f"figures not measured: {failed}\n{run.stderr[-4000:]}"
    missing = [e for e in EXPECTED if not any(k.startswith(e) for k in figures)]
    assert not missing, f"missing figures {missing}; got {sorted(figures)}"
    for key, f in figures.items():
        assert isinstance(f["value"], int | float) and f["value"] > 0, f"{key}: {f['value']}"
    assert run.returncode == 0, run.stderr[-4000:]
    assert result["machine"]["nproc"] >= 1
