"""Where a run happens: a Kafka broker of its own on free ports, a work folder, fresh prefixes.

Each measurement gets its own topic prefix, bucket and catalog, so no figure sees another's data.
BENCH_BOOTSTRAP points the run at a broker that is already running instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.kafka_broker import KafkaBroker
from headrace.dev.infra.ports import free_port_block
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics, ensure_pipeline_topics, ensure_topics
from headrace.lake import warehouse
from headrace.runtime.settings import CommonSettings


@dataclass
class Environment:
    bootstrap: str
    work: Path  # this run's folder: buckets, catalogs, logs
    data: Path  # sample files, kept between runs (generating 10M events takes minutes)

    def pipeline_settings(self, name: str, raw_partitions: int = 6) -> CommonSettings:
        """Fresh topics, bucket and migrated catalog under a prefix of its own."""
        prefix = f"bench-{name}-{uuid.uuid4().hex[:8]}"
        home = self.work / name
        common = CommonSettings(
            bootstrap_servers=self.bootstrap,
            topic_prefix=prefix,
            bucket_url=str(home / "bucket"),
            catalog_url=str(home / "warehouse" / "catalog.sqlite"),
        )
        ensure_pipeline_topics(kafka_clients.admin(self.bootstrap), Topics(prefix), raw_partitions)
        con = warehouse.connect(common)
        warehouse.migrate(con)
        con.close()
        return common

    def create_topics(self, wanted: dict[str, int]) -> None:
        ensure_topics(kafka_clients.admin(self.bootstrap), wanted)


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


@contextmanager
def environment(root: Path) -> Iterator[Environment]:
    """A broker for the run (started here and stopped at the end, unless BENCH_BOOTSTRAP)."""
    work = root / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    given = os.environ.get("BENCH_BOOTSTRAP")
    if given:
        yield Environment(given, work, data)
        return
    base = free_port_block(4)
    infra = InfraSettings(
        state_dir=work / "infra",
        kafka_port=base,
        kafka_controller_port=base + 1,
        gcs_port=base + 2,
        kafka_metrics_port=base + 3,
        kafka_heap=os.environ.get("BENCH_KAFKA_HEAP", "1g"),
    )
    broker = KafkaBroker(infra)
    with _quiet_stderr():
        # librdkafka logs every refused connection while the broker boots (the readiness probe
        # in headrace/dev/infra/kafka_broker.py retries until it answers): noise, not news.
        broker.start()
    try:
        yield Environment(infra.bootstrap, work, data)
    finally:
        broker.stop()
