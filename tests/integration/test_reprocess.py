"""Round trip through the real broker and pipeline: events rejected for RANGE, the contract relaxed
while the pipeline runs, `headrace reprocess` run twice, each event in the fact table once."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from headrace.audit.invariants import Checker
from headrace.dev.local_pipeline import LocalPipeline
from headrace.dev.sample_events import good_event
from headrace.kafka import clients as kafka_clients
from headrace.kafka import offsets
from headrace.lake import warehouse
from headrace.lake.bucket import Bucket
from headrace.rejections import ledger as reprocess_ledger
from headrace.runtime.paths import SCHEMAS_DIR
from headrace.runtime.settings import CommonSettings
from services.producer.runner import replay
from tests.conftest import env_of, wait_settled

pytestmark = pytest.mark.integration
Start = Callable[[CommonSettings], LocalPipeline]
GOOD, TOO_LARGE, TRUNCATED = 300, 20, 5
TOTAL = GOOD + TOO_LARGE + TRUNCATED


def write_sample(path: Path) -> list[int]:
    """GOOD events, TOO_LARGE above the contract's amount bound, TRUNCATED that are not JSON;
    returns the transaction ids of the too-large ones."""
    rng = random.Random(4)
    now = datetime.now(UTC)
    events = [good_event(rng, tid, now, [1, 2, 3]) for tid in range(1, TOTAL + 1)]
    large = [e["transaction_id"] for e in events[GOOD : GOOD + TOO_LARGE]]
    lines = []
    for i, e in enumerate(events):
        if i >= GOOD + TOO_LARGE:
            lines.append(orjson.dumps(e)[:-7])
        else:
            lines.append(orjson.dumps({**e, "amount": 5e9} if e["transaction_id"] in large else e))
    path.write_bytes(b"\n".join(lines) + b"\n")
    return large


def relax_amount(schemas: Path) -> None:
    contract_file = schemas / "transaction.contract.json"
    contract = json.loads(contract_file.read_text())
    contract["fields"]["amount"]["le"] = 1e10
    contract_file.write_text(json.dumps(contract, indent=2))


def headrace(common: CommonSettings, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_of(common, home)}
    done = subprocess.run(
        [sys.executable, "-m", "headrace", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done


def ledger_outcomes(common: CommonSettings) -> dict[str, list[str]]:
    """Outcomes by run id."""
    bucket = Bucket.open(common.bucket_url)
    runs: dict[str, list[str]] = {}
    for f in bucket.glob(reprocess_ledger.PATTERN):
        for line in bucket.read_bytes(f).splitlines():
            a = orjson.loads(line)
            runs.setdefault(a["run_id"], []).append(a["outcome"])
    return runs


def test_reprocess_after_relaxing_the_contract_loads_each_event_once(
    make_settings: Callable[..., CommonSettings], start_pipeline: Start, tmp_path: Path
) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, schemas)
    common = make_settings().model_copy(update={"schemas_dir": schemas})
    pipeline = start_pipeline(common)
    sample = tmp_path / "sample.jsonl"
    large = write_sample(sample)
    assert replay(sample, common, show_progress=False) == TOTAL
    before = wait_settled(common, TOTAL, pipeline)
    assert before.errors_by_reason == {"RANGE": TOO_LARGE, "PARSE": TRUNCATED}

    relax_amount(schemas)  # the validator reloads it; `reprocess` reads it from the same folder
    first = headrace(common, tmp_path, "reprocess", "--reason", "RANGE")
    assert "RANGE" in first.stdout
    after = wait_settled(common, TOTAL + TOO_LARGE, pipeline)

    second = headrace(common, tmp_path, "reprocess")  # every reason: PARSE still fails
    assert "skipped" in second.stdout.lower()
    headrace(common, tmp_path, "reprocess", "--reason", "PARSE")  # and fails again
    admin = kafka_clients.admin(common.bootstrap_servers)
    assert offsets.appended(admin, f"{common.topic_prefix}.raw") == TOTAL + TOO_LARGE
    runs = [sorted(set(outcomes)) for _, outcomes in sorted(ledger_outcomes(common).items())]
    assert sorted(runs) == [["republished"], ["still_failing"], ["still_failing"]]

    con = warehouse.connect(common, read_only=True)
    loaded = dict(
        con.execute(
            "SELECT transaction_id, count(*) FROM transaction_fact "
            "WHERE transaction_id IN (SELECT unnest(?)) GROUP BY ALL",
            [large],
        ).fetchall()
    )
    con.close()
    assert loaded == {tid: 1 for tid in large}
    assert after.fact_rows == GOOD + TOO_LARGE and after.duplicates == 0
    assert after.errors_by_reason == before.errors_by_reason  # the originals stay, once each

    report = json.loads(headrace(common, tmp_path, "errors", "--json", "--sample", "2").stdout)
    by_reason: dict[str, dict[str, Any]] = {r["reason"]: r for r in report["by_reason"]}
    assert by_reason["RANGE"] | {"reason": "RANGE"} == {
        "reason": "RANGE",
        "events": TOO_LARGE,
        "reprocessed": TOO_LARGE,
        "resolved": TOO_LARGE,
        "still_failing": 0,
        "rejected_again": 0,
        "attempts": TOO_LARGE,
    }
    # Two attempts each are history, not more rejected events.
    assert by_reason["PARSE"] | {"reason": "PARSE"} == {
        "reason": "PARSE",
        "events": TRUNCATED,
        "reprocessed": 0,
        "resolved": 0,
        "still_failing": TRUNCATED,
        "rejected_again": 0,
        "attempts": 2 * TRUNCATED,
    }
    assert len(report["samples"]) == 2
    shown = headrace(common, tmp_path, "errors", "--reason", "RANGE", "--sample", "1").stdout
    assert "amount" in shown and "a.jsonl" not in shown and sample.name in shown

    pipeline.stop()
    verdicts = Checker(common).run()
    assert [v for v in verdicts if not v.ok] == []
