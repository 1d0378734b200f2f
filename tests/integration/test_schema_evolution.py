"""Schema evolution without a restart, and interoperability with confluent-kafka's Avro serdes.

The rolling change: the pipeline starts on contract v1 with v2 unknown to the registry; v1
producers keep sending while v2 is registered and the contract switched, then v2 producers join.
No service restarts; both versions reach the same tables and files; a standard AvroDeserializer
reads every validated record.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from headrace.codec import wire_format
from headrace.codec.confluent_registry import ConfluentRegistry, FileRegistryClient
from headrace.codec.registry import FileSchemaRegistry, registry_for
from headrace.dev.local_pipeline import SERVICES, LocalPipeline
from headrace.kafka import clients as kafka_clients
from headrace.kafka.consumer_loop import StopFlag
from headrace.kafka.topics import Topics
from headrace.lake import warehouse
from headrace.runtime.http import Heartbeat
from headrace.runtime.paths import SCHEMAS_DIR
from headrace.runtime.settings import CommonSettings
from services.validator import runner as validator_runner
from services.validator.config import ValidatorSettings
from tests.conftest import wait_settled

pytestmark = pytest.mark.integration
Start = Callable[[CommonSettings], LocalPipeline]
WHEN = datetime(2026, 1, 15, 10, tzinfo=UTC)


def record(tid: int, channel: str | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {
        "transaction_id": tid,
        "amount": 10.0 + tid % 7,
        "processing_duration": 0.5,
        "status": "COMPLETED",
        "source_system": "pos",
        "account_number": f"{100000000000 + tid % 50}",
        "account_type": "SAVINGS",
        "customer_region": "NA",
        "event_time": WHEN,
    }
    if channel:
        r["channel"] = channel
    return r


def as_json(r: dict[str, Any]) -> bytes:
    return orjson.dumps({**r, "event_time": r["event_time"].isoformat()})


def v1_schemas(tmp_path: Path) -> Path:
    """schemas/ as it was before v2: contract on v1, registry without id 4."""
    target = tmp_path / "schemas"
    shutil.copytree(SCHEMAS_DIR, target)
    registry = json.loads((target / "registry.json").read_text())
    del registry["schemas"]["4"]
    (target / "registry.json").write_text(json.dumps(registry))
    contract = json.loads((target / "transaction.contract.json").read_text())
    contract["schema"] = "transaction.v1.avsc"
    del contract["fields"]["channel"]
    (target / "transaction.contract.json").write_text(json.dumps(contract))
    return target


def roll_out_v2(directory: Path) -> None:
    """Register v2, then switch the contract to it (each file replaced atomically)."""
    for name in ("registry.json", "transaction.contract.json"):
        tmp = directory / f".{name}.tmp"
        shutil.copy(SCHEMAS_DIR / name, tmp)
        os.replace(tmp, directory / name)


def live_schema(pipeline: LocalPipeline) -> set[str]:
    url = f"http://127.0.0.1:{pipeline.port('validator')}/metrics"
    with urllib.request.urlopen(url) as r:
        lines = r.read().decode().splitlines()
    return {
        line.split('schema="')[1].split('"')[0]
        for line in lines
        if line.startswith("headrace_contract_info{") and line.endswith(" 1.0")
    }


class Upstream(threading.Thread):
    """Sends events until stopped: JSON and Avro-framed halves, both keyed by transaction_id."""

    def __init__(self, common: CommonSettings, first_id: int, version: int) -> None:
        super().__init__(daemon=True)
        self.common, self.next_id, self.version = common, first_id, version
        self.registry = FileSchemaRegistry(Path(common.schemas_dir))
        self.stop = threading.Event()
        self.sent: list[int] = []

    def run(self) -> None:
        producer = kafka_clients.producer(self.common.bootstrap_servers)
        topic = Topics(self.common.topic_prefix).raw
        while not self.stop.is_set():
            for _ in range(50):
                tid = self.next_id
                self.next_id += 1
                r = record(tid, "MOBILE" if self.version == 2 else None)
                if tid % 2:
                    value = as_json(r)
                else:
                    value = self.registry.encode(f"transaction.v{self.version}.avsc", r)
                producer.produce(topic, value, str(tid).encode())
                self.sent.append(tid)
            producer.flush(10)
            time.sleep(0.05)
        assert producer.flush(30) == 0


def validated_schema_ids(common: CommonSettings, deserialize: AvroDeserializer) -> dict[int, int]:
    """Schema id -> records in `validated`, each one read by confluent-kafka's deserializer."""
    topic = Topics(common.topic_prefix).validated
    consumer = Consumer(
        {
            "bootstrap.servers": common.bootstrap_servers,
            "group.id": f"reader-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in meta.partitions}
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    ids: dict[int, int] = {}
    deadline = time.monotonic() + 60
    # Transaction markers take offsets too: a partition is read once the position reaches its end.
    while any(p.offset < ends[p.partition] for p in consumer.position(consumer.assignment())):
        assert time.monotonic() < deadline, "validated was not read to its end"
        for m in consumer.consume(1000, 0.5):
            if m.error():
                continue
            value = m.value()
            assert value is not None
            decoded = deserialize(value, SerializationContext(topic, MessageField.VALUE))
            assert isinstance(decoded, dict) and decoded["transaction_id"] > 0
            schema_id, _ = wire_format.unframe(value)
            ids[schema_id] = ids.get(schema_id, 0) + 1
    consumer.close()
    return ids


def test_rolling_schema_change_without_restart(
    make_settings: Callable[..., CommonSettings], start_pipeline: Start, tmp_path: Path
) -> None:
    common = make_settings().model_copy(update={"schemas_dir": v1_schemas(tmp_path)})
    pipeline = start_pipeline(common)
    pids = {s: pipeline.pid_file(s).read_text() for s in SERVICES}
    assert live_schema(pipeline) == {"transaction.v1.avsc"}

    v1 = Upstream(common, first_id=1, version=1)
    v1.start()
    time.sleep(3)
    roll_out_v2(Path(common.schemas_dir))
    deadline = time.monotonic() + 30
    while live_schema(pipeline) != {"transaction.v2.avsc"}:
        assert time.monotonic() < deadline, "the validator did not pick up the v2 contract"
        time.sleep(0.3)
    v2 = Upstream(common, first_id=1_000_000, version=2)
    v2.start()
    time.sleep(4)  # both versions flow at once
    for upstream in (v1, v2):
        upstream.stop.set()
        upstream.join(60)
    sent = len(v1.sent) + len(v2.sent)

    counts = wait_settled(common, sent, pipeline)
    assert counts.fact_rows == sent and counts.error_zone == 0
    assert {s: pipeline.pid_file(s).read_text() for s in SERVICES} == pids  # nobody restarted

    con = warehouse.connect(common, read_only=True)
    by_channel = dict(
        con.execute(
            "SELECT coalesce(channel, 'v1'), count(*) FROM transaction_fact GROUP BY ALL"
        ).fetchall()
    )
    assert by_channel == {"v1": len(v1.sent), "MOBILE": len(v2.sent)}
    # One Parquet file per load batch whatever the mix of versions: no storm of small files.
    meta = f"__ducklake_metadata_{warehouse.LAKE}"
    files = con.execute(
        f"""SELECT count(*) FROM {meta}.ducklake_data_file df
            JOIN {meta}.ducklake_table t USING (table_id)
            WHERE t.table_name = 'transaction_fact'"""
    ).fetchone()
    batches = con.execute("SELECT count(*) FROM load_batch WHERE fact_rows > 0").fetchone()
    assert files is not None and batches is not None
    assert files[0] <= batches[0]

    ids = validated_schema_ids(
        common, AvroDeserializer(FileRegistryClient(Path(common.schemas_dir)))
    )
    assert set(ids) == {1, 4} and sum(ids.values()) == sent


def test_schema_registry_url_interoperates_with_confluent_serdes(
    make_settings: Callable[..., CommonSettings],
) -> None:
    """Upstream uses confluent-kafka's AvroSerializer; a downstream its AvroDeserializer."""
    common = make_settings().model_copy(update={"schema_registry_url": "mock://evolution"})
    registry = registry_for(common)
    assert isinstance(registry, ConfluentRegistry)  # a schema_registry_url names the Confluent one
    client: SchemaRegistryClient = registry.client
    topics = Topics(common.topic_prefix)
    v2_schema = (SCHEMAS_DIR / "transaction.v2.avsc").read_text()
    serialize = AvroSerializer(client, v2_schema)
    producer = kafka_clients.producer(common.bootstrap_servers)
    ctx = SerializationContext(topics.raw, MessageField.VALUE)
    values = [serialize(record(i, "ATM"), ctx) for i in range(1, 51)]
    values += [as_json(record(i)) for i in range(51, 101)]
    values.append(as_json({**record(101), "amount": -1.0}))
    for i, value in enumerate(values, start=1):
        producer.produce(topics.raw, value, str(i).encode())
    assert producer.flush(30) == 0

    stop = StopFlag()
    loop = validator_runner.build(common, ValidatorSettings(group_id="sr"), stop, Heartbeat())
    deadline = time.monotonic() + 60
    consumed: list[int] = [0]

    def drained() -> bool:
        consumed[0] = _consumed(loop.consumer)
        return consumed[0] >= len(values) or time.monotonic() > deadline

    loop.run(idle_exit=drained)
    assert consumed[0] == len(values)

    ids = validated_schema_ids(common, AvroDeserializer(client))
    assert sum(ids.values()) == 100
    assert set(ids) == {client.get_latest_version("dev.headrace.events.Transaction").schema_id}


def _consumed(consumer: Consumer) -> int:
    return sum(max(p.offset, 0) for p in consumer.position(consumer.assignment()))
