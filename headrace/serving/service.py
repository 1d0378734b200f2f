"""The shape every service process shares: settings, logging, start checks, health server, loop.

`start()` is every service's first step; `run_consumer_service()` is the whole of a consuming
service (stager, validator, loader) around the loop its `build()` makes.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
from collections.abc import Callable
from typing import TypeVar

from pydantic_settings import BaseSettings

from headrace.kafka import clients as kafka_clients
from headrace.kafka.consumer_loop import ConsumerLoop, StopFlag
from headrace.runtime import settings
from headrace.runtime.http import HealthServer, Heartbeat, build_app
from headrace.runtime.settings import CommonSettings, ConsumerServiceSettings

S = TypeVar("S", bound=ConsumerServiceSettings)
Own = TypeVar("Own", bound=BaseSettings)
log = logging.getLogger(__name__)

# What each service writes, so what it checks at start (`check_start`). The producer and the
# validator touch neither the bucket nor the warehouse: a mistake there is not theirs to report.
BUCKET_WRITERS = frozenset({"stager", "loader", "summarizer"})
CATALOG_WRITERS = frozenset({"loader", "summarizer"})


def configure_logging(level: str, service: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )


def check_start(service: str, common: CommonSettings) -> None:
    """Check the bucket and the catalog `service` writes to; an OperatorError if unusable.

    Called before the broker is awaited and before any thread starts: an operator mistake in
    the bucket or the catalog is reported in one line at start, broker or not, rather than as a
    crash at the first batch. Only the start: failures at run time stay retriable errors.
    """
    if service in BUCKET_WRITERS:
        from headrace.lake.bucket import Bucket

        Bucket.open(common.bucket_url, common.gcs_endpoint).check_writable()
    if service in CATALOG_WRITERS:
        from headrace.lake import warehouse

        warehouse.connect(common, service=True).close()  # a writer's attach creates it if new
    if service in BUCKET_WRITERS | CATALOG_WRITERS:
        log.info("bucket and warehouse catalog usable")


def start(service: str, own_settings: type[Own]) -> tuple[CommonSettings, Own]:
    """Load the settings, set up logging, check the bucket and catalog, then await the broker.

    A mistake in the settings, the bucket or the catalog is one line and exit 2 before anything
    runs; only then does the service wait for Kafka, which may simply not be up yet.
    """
    common = settings.load(CommonSettings)
    own = settings.load(own_settings)
    configure_logging(common.log_level, service)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: every thread's stack
    check_start(service, common)
    kafka_clients.wait_for_broker(common.bootstrap_servers)
    return common, own


def run_consumer_service(
    service: str,
    own_settings: type[S],
    build: Callable[[CommonSettings, S, StopFlag, Heartbeat], ConsumerLoop],
) -> None:
    """Start, serve /healthz /readyz /metrics, and run the loop `build` makes until SIGTERM."""
    common, own = start(service, own_settings)
    heartbeat = Heartbeat(common.watchdog_seconds)
    heartbeat.start_watchdog()
    stop = StopFlag()
    stop.install()
    loop = build(common, own, stop, heartbeat)
    server = HealthServer(build_app(heartbeat, loop.ready), common.http_host, own.port)
    server.start()
    try:
        loop.run()
    finally:
        server.stop()
