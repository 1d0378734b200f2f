"""A broker lost mid-replay on a three-node cluster: nothing acknowledged is lost, nothing doubles.

The pipeline runs on the session's real cluster (RF 3, min.insync.replicas 2, acks=all). While
the replay publishes, the node leading partition 0 of raw is killed with SIGKILL, as a machine
that is lost; its partitions move to the other two. Afterwards raw = fact + duplicates + error
zone, and every event the producer had acknowledged is on raw and in its place (I1).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from headrace.audit.invariants import Checker
from headrace.dev.infra.kafka_cluster import KafkaCluster
from headrace.dev.local_pipeline import LocalPipeline
from headrace.dev.sample_events import generate
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics, cluster_replication, ensure_pipeline_topics
from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings
from services.producer.runner import replay
from tests.conftest import wait_settled

pytestmark = pytest.mark.integration

EVENTS = 30_000
RATE = 3_000  # events/s: the replay's three batches of 10,000 span the kill


def cluster_settings(cluster: KafkaCluster, tmp_path: Path) -> CommonSettings:
    common = CommonSettings(
        bootstrap_servers=cluster.bootstrap,
        topic_prefix=f"f-{uuid.uuid4().hex[:10]}",
        bucket_url=str(tmp_path / "bucket"),
        catalog_url=str(tmp_path / "catalog.sqlite"),
    )
    admin = kafka_clients.admin(cluster.bootstrap)
    replication = cluster_replication(admin)
    assert (replication.factor, replication.min_insync) == (3, 2)
    ensure_pipeline_topics(admin, Topics(common.topic_prefix), replication=replication)
    warehouse.migrate(warehouse.connect(common))
    return common


def raw_leader(common: CommonSettings, partition: int = 0) -> int:
    admin = kafka_clients.admin(common.bootstrap_servers)
    raw = Topics(common.topic_prefix).raw
    leader: int = admin.list_topics(raw, timeout=10).topics[raw].partitions[partition].leader
    return leader


def wait_for_lines(path: Path, at_least: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or sum(1 for _ in path.open()) < at_least:
        assert time.monotonic() < deadline, f"fewer than {at_least} acknowledgements"
        time.sleep(0.05)


def test_killing_the_leader_of_raw_mid_replay_loses_and_doubles_nothing(
    kafka_cluster: KafkaCluster,
    start_pipeline: Callable[[CommonSettings], LocalPipeline],
    tmp_path: Path,
) -> None:
    common = cluster_settings(kafka_cluster, tmp_path)
    pipeline = start_pipeline(common)
    sample, ack_log = tmp_path / "sample.jsonl", tmp_path / "acks.log"
    expected = generate(sample, EVENTS, bad_ratio=0.05, seed=23)
    acked: list[int] = []
    replaying = threading.Thread(
        target=lambda: acked.append(
            replay(sample, common, rate_limit=RATE, show_progress=False, ack_log=ack_log)
        )
    )
    replaying.start()
    wait_for_lines(ack_log, 10_000)  # the first batch is in; the others are to come
    victim = raw_leader(common)
    try:
        kafka_cluster.kill(victim)
        assert replaying.is_alive(), "the node must be lost while the replay publishes"
        replaying.join(timeout=120)
        assert not replaying.is_alive(), "the replay did not finish"
        assert acked == [EVENTS], "the producer must have every event acknowledged"
        assert raw_leader(common) not in (victim, -1)

        # Losing the node that coordinates the validator's transaction can leave librdkafka's
        # send_offsets_to_transaction blocked past its timeout; the validator then exits
        # (headrace/kafka/stuck_calls.py) and is restarted, as Kubernetes would.
        counts = wait_settled(common, EVENTS, pipeline, timeout=120, restart_exited=True)
    finally:
        kafka_cluster.start_node(victim)  # the next tests get three brokers again

    assert counts.events_in == EVENTS
    assert counts.fact_rows + counts.duplicates == expected["VALID"]
    assert counts.fact_rows == expected["VALID"], "a retried send was written twice"
    assert counts.error_zone == EVENTS - expected["VALID"]
    assert counts.holds
    verdicts = {v.name: v for v in Checker(common, ack_log).run()}
    for name in ("I1 conservation", "I2 no duplicates", "I4 no aborted reads"):
        assert verdicts[name].ok, verdicts[name]
