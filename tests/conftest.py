"""Shared fixtures: a real Kafka broker for the session, isolated pipelines per test.

The broker is started by the project's own infra code (jars from Maven Central, cached) on ports
that do not collide with `make demo`; set HEADRACE_TEST_BOOTSTRAP to use a broker already running.
The same infra code starts PostgreSQL (Debian's package) for the tests that need a PostgreSQL
catalog; HEADRACE_TEST_CATALOG=postgres puts every pipeline of `make_settings` on it too (a
database per test), instead of a SQLite file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from headrace.audit.reconciliation import Reconciliation
from headrace.cli.report_view import current_counts
from headrace.dev.infra import kafka_metrics, local_kafka
from headrace.dev.infra.config import InfraSettings
from headrace.dev.infra.gcs_emulator import GcsEmulator
from headrace.dev.infra.kafka_broker import KafkaBroker
from headrace.dev.infra.kafka_cluster import KafkaCluster
from headrace.dev.infra.ports import free_port_block
from headrace.dev.infra.postgres_server import PostgresServer
from headrace.dev.local_pipeline import SERVICES, LocalPipeline, settings_env
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics, ensure_pipeline_topics
from headrace.lake import warehouse
from headrace.runtime.errors import OperatorError
from headrace.runtime.settings import CommonSettings

CATALOG_ENV = "HEADRACE_TEST_CATALOG"


@pytest.fixture(scope="session")
def infra() -> Iterator[InfraSettings]:
    # Free ports, not fixed ones: several test sessions (and `make demo`) may run at once.
    base = free_port_block(5)
    # Not under pytest's temp folder, which only root may enter: as root, PostgreSQL runs as
    # nobody, who must reach its data folder.
    state = Path(tempfile.mkdtemp(prefix="headrace-infra-"))
    state.chmod(0o755)
    yield InfraSettings(
        state_dir=state,
        kafka_port=base,
        kafka_controller_port=base + 1,
        gcs_port=base + 2,
        kafka_metrics_port=base + 3,
        postgres_port=base + 4,
        kafka_heap="512m",
    )
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(infra: InfraSettings) -> Iterator[PostgresServer]:
    """The session's PostgreSQL server; PGPASSWORD is set for this process and its children."""
    server = PostgresServer(infra)
    try:
        server.start()
    except OperatorError as exc:  # not installed: the one line that says what to do
        pytest.fail(str(exc), pytrace=False)
    os.environ["PGPASSWORD"] = server.password
    yield server
    server.stop()


@pytest.fixture
def stoppable_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, which it may stop and start again."""
    state = Path(tempfile.mkdtemp(prefix="headrace-pg-"))
    state.chmod(0o755)  # as root, PostgreSQL runs as nobody, who must reach its folder
    server = PostgresServer(InfraSettings(state_dir=state, postgres_port=free_port_block(1)))
    try:
        server.start()
    except OperatorError as exc:  # not installed: the one line that says what to do
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def postgres_catalog(postgres: PostgresServer) -> str:
    """HEADRACE_CATALOG_URL of a new, empty database of the session's PostgreSQL."""
    return postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def bootstrap(infra: InfraSettings) -> Iterator[str]:
    given = os.environ.get("HEADRACE_TEST_BOOTSTRAP")
    if given:
        yield given
        return
    broker = KafkaBroker(infra)
    broker.start()
    yield infra.bootstrap
    broker.stop()


# Every node gets SIGTERM at once and the cluster stops in 6-9 s (docs/operations.md); one by
# one, the last nodes wait for a quorum already gone. The margin is for a machine under load.
CLUSTER_STOP_SECONDS = 20.0


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A three-node KRaft cluster started by the project's own code, on free ports."""
    base = free_port_block(6)
    infra = InfraSettings(
        state_dir=tmp_path_factory.mktemp("cluster"),
        kafka_port=base,
        kafka_controller_port=base + 1,
        kafka_metrics_port=free_port_block(21),  # node n on + 10(n-1)
        kafka_node_heap="512m",
    )
    cluster = local_kafka.start(infra, 3)
    assert isinstance(cluster, KafkaCluster)
    yield cluster
    started = time.monotonic()
    local_kafka.stop(infra)
    took = time.monotonic() - started
    assert not any(n.pid() for n in cluster.nodes)
    assert took < CLUSTER_STOP_SECONDS, f"stopping the cluster took {took:.1f}s"


@pytest.fixture(scope="session")
def broker_metrics(infra: InfraSettings, bootstrap: str) -> str:
    """host:port of the session broker's Prometheus metrics (its JMX exporter agent)."""
    if os.environ.get("HEADRACE_TEST_BOOTSTRAP"):
        pytest.skip("the broker in HEADRACE_TEST_BOOTSTRAP has no known metrics agent")
    return f"127.0.0.1:{kafka_metrics.metrics_port(infra)}"


@pytest.fixture(scope="session")
def gcs_endpoint(infra: InfraSettings) -> Iterator[str]:
    emulator = GcsEmulator(infra)
    emulator.start()
    yield infra.gcs_endpoint
    emulator.stop()


@pytest.fixture
def make_settings(
    bootstrap: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Callable[..., CommonSettings]:
    """Settings for an isolated pipeline: its own topics, bucket and catalog (a SQLite file, or
    a PostgreSQL database with HEADRACE_TEST_CATALOG=postgres)."""
    catalog = os.environ.get(CATALOG_ENV, "sqlite")
    if catalog not in ("sqlite", "postgres"):
        raise pytest.UsageError(f"{CATALOG_ENV}={catalog}: use sqlite or postgres")

    def make(bucket_url: str | None = None, gcs_endpoint: str | None = None) -> CommonSettings:
        prefix = f"t-{uuid.uuid4().hex[:10]}"
        if catalog == "postgres":
            server: PostgresServer = request.getfixturevalue("postgres")
            catalog_url = server.create_database(prefix.replace("-", "_"))
        else:
            catalog_url = str(tmp_path / "catalog.sqlite")
        common = CommonSettings(
            bootstrap_servers=bootstrap,
            topic_prefix=prefix,
            bucket_url=bucket_url or str(tmp_path / "bucket"),
            catalog_url=catalog_url,
            gcs_endpoint=gcs_endpoint,
        )
        ensure_pipeline_topics(kafka_clients.admin(bootstrap), Topics(prefix))
        warehouse.migrate(warehouse.connect(common))
        return common

    return make


def env_of(common: CommonSettings, home: Path) -> dict[str, str]:
    # Tests wait for summaries: the summarizer's timer catches up every second.
    return {**settings_env(common, home), "HEADRACE_SUMMARIZER_CATCH_UP_SECONDS": "1"}


@pytest.fixture
def start_pipeline(tmp_path: Path) -> Iterator[Callable[[CommonSettings], LocalPipeline]]:
    started: list[LocalPipeline] = []

    def start(common: CommonSettings) -> LocalPipeline:
        home = tmp_path / f"pipeline-{len(started)}"
        pipeline = LocalPipeline(home, env_of(common, home), port_base=free_port_block())
        started.append(pipeline)
        pipeline.start()
        pipeline.wait_ready()
        return pipeline

    yield start
    for p in started:
        p.stop()


def wait_settled(
    common: CommonSettings,
    expected_in: int,
    pipeline: LocalPipeline,
    timeout: float = 120.0,
    restart_exited: bool = False,
) -> Reconciliation:
    """The reconciliation once every event that entered raw is placed, staged and summarized.

    A service that exits fails the wait, unless `restart_exited`: then it is started again, as
    Kubernetes would (for faults whose designed answer is an exit and a restart).
    """
    deadline = time.monotonic() + timeout
    while True:
        dead = [s for s in SERVICES if not pipeline.alive(s)]
        if restart_exited:
            for service in dead:
                pipeline.start_instance(service)
            dead = []
        assert not dead, f"{dead} exited; see {pipeline.home / 'logs'}"
        counts, _ = current_counts(common)
        if (counts.events_in or 0) >= expected_in and counts.settled:
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(f"pipeline did not settle in {timeout}s: {counts}")
        time.sleep(0.5)
