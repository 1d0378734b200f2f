"""The summarizer as a faust-streaming agent on `loaded`.

faust fits here: one low-rate stream of manifests, no throughput to cap. Warehouse work is blocking
DuckDB, so it runs on one worker thread (one connection, one transaction at a time). A timer also
refreshes periodically, which covers manifests that were never published. After a refresh the same
thread observes the reconciliation once and shows that observation in the warehouse gauges and in
the BI snapshot, which it republishes when it changed; the health server also serves /dashboard,
which reads that snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import faust

from headrace.audit import reconciliation
from headrace.audit.reconciliation import Reconciliation
from headrace.audit.warehouse_metrics import WarehouseMetrics
from headrace.codec.registry import registry_for
from headrace.kafka import clients as kafka_clients
from headrace.kafka.topics import Topics
from headrace.lake import catalog_health, warehouse
from headrace.lake.bucket import Bucket
from headrace.lake.error_zone import ErrorZoneTally
from headrace.lake.partition_locks import single_key
from headrace.runtime import metrics
from headrace.runtime.errors import OperatorError, one_line
from headrace.runtime.http import HealthServer, Heartbeat, build_app
from headrace.runtime.registry import SUMMARIZER
from headrace.runtime.settings import CommonSettings
from headrace.serving import service
from services.summarizer.config import SummarizerSettings
from services.summarizer.core import apply_refresh, prepare_refresh
from services.summarizer.dashboard import DashboardSource, add_routes
from services.summarizer.publisher import Publisher

log = logging.getLogger(__name__)
SERVICE = SUMMARIZER.name
# One refresh applies at a time on a PostgreSQL catalog: two summarizers that both found the
# same batches unsummarized would otherwise both commit, and the days no mart covered yet would
# get their rows twice (DuckLake sees no conflict in inserts, nor in deletes that removed nothing).
REFRESH_LOCK = single_key("summary_refresh")


class Summarizer:
    def __init__(self, common: CommonSettings, own: SummarizerSettings) -> None:
        self.common, self.own = common, own
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warehouse")
        self.session = warehouse.Session(common, service=SERVICE)
        warehouse.migrate(self.session.con)
        self.last_refresh = 0.0
        self.heartbeat = Heartbeat(common.watchdog_seconds)
        # Kept across refreshes: each observation reads only the error-zone files that changed.
        self.errors = ErrorZoneTally(Bucket.open(common.bucket_url, common.gcs_endpoint))
        self.admin = kafka_clients.admin(common.bootstrap_servers)
        self.gauges = WarehouseMetrics()
        self.publisher = Publisher(
            lambda: self.session.con,
            self.errors,
            own.snapshot_file(common),
            own.snapshot_min_interval_seconds,
            on_retry=self.session.reconnect,
        )
        self.snapshot_problem = ""
        self.snapshot_failing_since = 0.0
        self.catalog_problem = ""

    def refresh(self) -> None:
        """One refresh, or none while the catalog cannot be reached.

        A catalog outage ends no process: restarting cannot bring the catalog back, and a
        summarizer that stays up keeps headrace_catalog_up at 0 for Prometheus
        (HeadraceCatalogUnreachable) while its catch-up timer tries again every
        HEADRACE_SUMMARIZER_CATCH_UP_SECONDS. Its loop keeps turning (the heartbeat beats), and
        it is not ready until a refresh succeeds.
        """
        try:
            # A refresh outlasting the watchdog is not stuck until it passes its own bound: a
            # large one, or a BI snapshot, on a slow bucket under load took over 30 s, and a
            # restart would only redo it.
            with self.heartbeat.busy(self.own.refresh_max_seconds):
                self._refresh()
        except (duckdb.Error, OperatorError) as exc:
            if not catalog_health.unreachable(exc):
                raise
            self.heartbeat.beat()
            if not self.catalog_problem:
                log.warning("warehouse catalog unreachable, retrying: %s", one_line(exc))
            self.catalog_problem = one_line(exc)
            return
        if self.catalog_problem:
            log.info("warehouse catalog reachable again")
            self.catalog_problem = ""

    def _refresh(self) -> None:
        started = time.monotonic()
        # The fact rows are read outside the writers' turn; only the marts' replacement is in it.
        prepared = self.session.read(lambda con: prepare_refresh(con, self.own.hourly_days))
        applied = prepared is not None and self.session.transact(
            lambda con: apply_refresh(con, prepared), [REFRESH_LOCK]
        )
        self.last_refresh = time.monotonic()
        if prepared is not None and applied:
            batches = len(prepared.batch_ids)
            metrics.BATCH_SECONDS.labels(SERVICE).observe(self.last_refresh - started)
            metrics.EVENTS_IN.labels(SERVICE, "load_batch").inc(batches)
            metrics.LAST_PROGRESS.labels(SERVICE).set_to_current_time()
            log.info("refreshed %d days for %d batches", len(prepared.days), batches)
        elif prepared is not None:
            log.info("another summarizer refreshed these batches meanwhile; reading again")
        self.report()

    def report(self) -> None:
        """Observe the reconciliation once; the gauges and the BI snapshot show that observation.

        A failure is retried on the next refresh.
        """
        try:
            seen = warehouse.with_retries(self.observe, on_retry=self.session.reconnect)
        except (duckdb.Error, OSError, ValueError) as exc:
            self.gauges.failed(str(exc))
            self.snapshot_failed(exc)
            return
        self.gauges.export(lambda: self.session.con, seen)
        try:
            self.publisher.publish(seen)
            self.snapshot_problem = ""
        except (duckdb.Error, OSError, ValueError) as exc:
            self.snapshot_failed(exc)

    def observe(self) -> Reconciliation:
        return reconciliation.observe(
            self.session.con,
            self.errors,
            self.admin,
            Topics(self.common.topic_prefix).raw,
            days=self.gauges.days_due(),
        )

    def snapshot_failed(self, exc: Exception) -> None:
        if not self.snapshot_problem:
            self.snapshot_failing_since = time.monotonic()
        self.snapshot_problem = str(exc).splitlines()[0]
        log.warning("BI snapshot not written: %s", self.snapshot_problem)

    async def refresh_async(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self.refresh)

    def ready(self) -> tuple[bool, str]:
        now = time.monotonic()
        age = now - self.last_refresh
        limit = max(60.0, 3 * self.own.catch_up_seconds)
        detail = f"last refresh {age:.1f}s ago"
        if self.catalog_problem:
            return False, f"{detail}; warehouse catalog unreachable: {self.catalog_problem}"
        if self.snapshot_problem:
            # Ready again as soon as a snapshot is written; until then say why it is not.
            failing = now - self.snapshot_failing_since
            detail += f"; BI snapshot failing for {failing:.0f}s: {self.snapshot_problem}"
            return age < limit and failing < limit, detail
        return age < limit, detail


def make_app(summarizer: Summarizer) -> faust.App:
    common, own = summarizer.common, summarizer.own
    app = faust.App(
        own.group_id,
        broker=f"kafka://{common.bootstrap_servers}",
        store="memory://",
        datadir=str(Path(own.data_dir).resolve()),
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=10,
        topic_disable_leader=True,
        # acks=all, as every producer of the pipeline (faust's default too, said here so that
        # a change of faust's default cannot weaken it): with min.insync.replicas 2 a write is
        # on two brokers before it is acknowledged.
        producer_acks=-1,
    )
    loaded = app.topic(Topics(common.topic_prefix).loaded, value_serializer="raw")
    registry = registry_for(common)

    @app.agent(loaded)
    async def on_manifest(stream: Any) -> None:
        async for value in stream:
            manifest = registry.decode(value)
            log.debug("manifest %s: days %s", manifest["batch_id"], manifest["days"])
            await summarizer.refresh_async()

    async def catch_up() -> None:
        await summarizer.refresh_async()

    # Registered by a call, not as a decorator: faust types timer() as returning a bare
    # Callable, which would leave catch_up untyped.
    app.timer(interval=own.catch_up_seconds)(catch_up)

    return app


def main() -> None:
    common, own = service.start(SERVICE, SummarizerSettings)  # before any thread and faust
    summarizer = Summarizer(common, own)
    summarizer.refresh()
    summarizer.heartbeat.start_watchdog()  # the catch-up timer beats it; stuck means exit
    http = build_app(summarizer.heartbeat, summarizer.ready)
    source = DashboardSource(own.snapshot_file(common), own.dashboard_days)
    add_routes(http, source, own.dashboard_refresh_seconds)
    server = HealthServer(http, common.http_host, own.port)
    server.start()
    try:
        faust.Worker(make_app(summarizer), loglevel="warning").execute_from_commandline()
    finally:
        server.stop()
