"""The summarizer as a faust-streaming agent on `loaded`.

faust fits here: one low-rate stream of manifests, no throughput to cap. Warehouse work is blocking
DuckDB, so it runs on one worker thread (one connection, one transaction at a time). A timer also
refreshes periodically, which covers manifests that were never published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import faust

from headrace import metrics, settings, warehouse
from headrace.schema_registry import default_registry
from headrace.service import configure_logging
from headrace.service_http import HealthServer, Heartbeat, build_app
from headrace.settings import CommonSettings
from headrace.topics import Topics
from services.summarizer.config import SummarizerSettings
from services.summarizer.core import refresh_pending

log = logging.getLogger(__name__)
SERVICE = "summarizer"


class Summarizer:
    def __init__(self, common: CommonSettings, own: SummarizerSettings) -> None:
        self.common, self.own = common, own
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warehouse")
        self.con = warehouse.connect(common)
        warehouse.migrate(self.con)
        self.last_refresh = 0.0
        self.heartbeat = Heartbeat()

    def refresh(self) -> None:
        started = time.monotonic()
        batches, days = warehouse.with_retries(
            lambda: warehouse.in_transaction(self.con, lambda: refresh_pending(self.con))
        )
        self.last_refresh = time.monotonic()
        self.heartbeat.beat()
        if batches:
            metrics.BATCH_SECONDS.labels(SERVICE).observe(self.last_refresh - started)
            metrics.EVENTS_IN.labels(SERVICE, "load_batch").inc(batches)
            metrics.LAST_PROGRESS.labels(SERVICE).set_to_current_time()
            log.info("refreshed %d days for %d batches", len(days), batches)

    async def refresh_async(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.executor, self.refresh)

    def ready(self) -> tuple[bool, str]:
        age = time.monotonic() - self.last_refresh
        limit = max(60.0, 3 * self.own.catch_up_seconds)
        return age < limit, f"last refresh {age:.1f}s ago"


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
    )
    loaded = app.topic(Topics(common.topic_prefix).loaded, value_serializer="raw")
    registry = default_registry()

    @app.agent(loaded)
    async def on_manifest(stream: Any) -> None:
        async for value in stream:
            manifest = registry.decode(value)
            log.debug("manifest %s: days %s", manifest["batch_id"], manifest["days"])
            await summarizer.refresh_async()

    @app.timer(interval=own.catch_up_seconds)
    async def catch_up() -> None:
        await summarizer.refresh_async()

    return app


def main() -> None:
    common = settings.load(CommonSettings)
    own = settings.load(SummarizerSettings)
    configure_logging(common.log_level, SERVICE)
    summarizer = Summarizer(common, own)
    summarizer.refresh()
    server = HealthServer(
        build_app(summarizer.heartbeat, summarizer.ready), common.http_host, own.port
    )
    server.start()
    try:
        faust.Worker(make_app(summarizer), loglevel="warning").execute_from_commandline()
    finally:
        server.stop()
