"""One poison record of each kind in the middle of 10,000 valid events, through the real broker.

Each service runs with HEADRACE_POISON_AT naming a marker of its own, so a record that carries it
makes that service's processing step raise although every check before passed: the records a
stage cannot take in real life (a gap between validation and a later step) behave exactly so.
No service may exit, the poison must end in the error zone with its reason, and every valid
event must be loaded once.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from headrace.dev.infra.ports import free_port_block
from headrace.dev.local_pipeline import SERVICES, LocalPipeline
from headrace.dev.sample_events import good_event
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics
from headrace.lake import error_zone, raw_zone
from headrace.lake.bucket import Bucket
from headrace.runtime.settings import CommonSettings
from services.producer.runner import replay
from tests.conftest import env_of, wait_settled

pytestmark = pytest.mark.integration
VALID = 10_000
MARKERS = {"stager": "STAGER-POISON", "validator": "VALIDATOR-POISON", "loader": "LOADER-POISON"}


def events(tmp_path: Path) -> tuple[Path, list[bytes]]:
    """The JSONL file (10,000 valid events, the poison in the middle) and the messages to send
    past the producer (a raw message at the broker's limit: no file line may be that large)."""
    rng = random.Random(16)
    now = datetime.now(UTC)
    good = [good_event(rng, i + 1, now, list(range(50))) for i in range(VALID)]
    # Valid, but the stager cannot write its line: it is kept as UNPROCESSABLE in the raw zone
    # and goes on to be validated and loaded like the others.
    good[VALID // 3]["source_system"] = MARKERS["stager"]
    lines = [orjson.dumps(e) for e in good]
    template = {**good[0], "transaction_id": 0}
    poison = [
        json.dumps({**template, "transaction_id": 2**63 + 5}).encode(),  # beyond int64: RANGE
        b'{"transaction_id": 7, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # SIZE
        orjson.dumps(
            {**template, "transaction_id": VALID + 1, "source_system": MARKERS["validator"]}
        ),
        orjson.dumps({**template, "transaction_id": VALID + 2, "source_system": MARKERS["loader"]}),
    ]
    middle = VALID // 2
    path = tmp_path / "poison.jsonl"
    path.write_bytes(b"\n".join([*lines[:middle], *poison, *lines[middle:]]) + b"\n")
    at_the_limit = b'{"transaction_id": 9, "blob": "' + b"x" * 1_040_000 + b'"}'
    return path, [at_the_limit]


def test_poison_of_every_kind_is_isolated_and_nothing_stops(
    make_settings: Callable[..., CommonSettings], tmp_path: Path
) -> None:
    common = make_settings()
    home = tmp_path / "pipeline"
    pipeline = LocalPipeline(home, env_of(common, home), port_base=free_port_block())
    for service in SERVICES:
        marker = MARKERS.get(service)
        pipeline.start_instance(
            service, extra_env={"HEADRACE_POISON_AT": f"{service}:{marker}"} if marker else None
        )
    try:
        pipeline.wait_ready()
        path, direct = events(tmp_path)
        assert replay(path, common, show_progress=False) == VALID + 4
        producer = kafka_clients.producer(
            common.bootstrap_servers, **{"message.max.bytes": 1_048_576}
        )
        for value in direct:
            producer.produce(Topics(common.topic_prefix).raw, value)
        assert producer.flush(30) == 0

        counts = wait_settled(common, VALID + 5, pipeline, timeout=240)

        assert counts.fact_rows == VALID and counts.duplicates == 0
        assert counts.errors_by_reason == {"RANGE": 1, "SIZE": 2, "UNPROCESSABLE": 2}
        bucket = Bucket.open(common.bucket_url)
        errors = error_zone.records(bucket)
        isolated = {e["stage"]: e for e in errors if e["reason"] == "UNPROCESSABLE"}
        assert set(isolated) == {"validator", "loader"}
        for stage, e in isolated.items():
            assert e["problems"][0]["message"].startswith(f"{stage}: InjectedPoison:")
        assert MARKERS["validator"] in isolated["validator"]["original"]
        assert isolated["loader"]["source_topic"] == Topics(common.topic_prefix).validated
        kept = [r for r in raw_zone.records(bucket) if r.get("reason") == "UNPROCESSABLE"]
        assert len(kept) == 1 and MARKERS["stager"] in kept[0]["value"]
        assert all(pipeline.alive(s) for s in SERVICES)
        assert _isolated_metric(pipeline) == Counter(stager=1, validator=1, loader=1)
    finally:
        pipeline.stop()

    check = subprocess.run(
        [sys.executable, "-m", "headrace", "check"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env_of(common, home)},
    )
    assert check.returncode == 0, check.stdout + check.stderr


def _isolated_metric(pipeline: LocalPipeline) -> Counter[str]:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    found: Counter[str] = Counter()
    for service in MARKERS:
        url = f"http://127.0.0.1:{pipeline.port(service)}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            for family in text_string_to_metric_families(r.read().decode()):
                if family.name == "headrace_isolated_records":
                    found[service] += int(
                        sum(s.value for s in family.samples if s.name.endswith("_total"))
                    )
    return found
