"""The shape every consuming service process shares: settings, logging, health server, loop."""

from __future__ import annotations

import faulthandler
import logging
import signal
from collections.abc import Callable
from typing import TypeVar

from headrace import kafka_clients, settings
from headrace.consumer_loop import ConsumerLoop, StopFlag
from headrace.service_http import HealthServer, Heartbeat, build_app
from headrace.settings import CommonSettings, ConsumerServiceSettings

S = TypeVar("S", bound=ConsumerServiceSettings)


def configure_logging(level: str, service: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s",
    )


def run_consumer_service(
    service: str,
    own_settings: type[S],
    build: Callable[[CommonSettings, S, StopFlag, Heartbeat], ConsumerLoop],
) -> None:
    """Load settings, check the broker, serve /healthz /readyz /metrics, run the loop to the end."""
    common = settings.load(CommonSettings)
    own = settings.load(own_settings)
    configure_logging(common.log_level, service)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1: every thread's stack
    kafka_clients.wait_for_broker(common.bootstrap_servers)
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
