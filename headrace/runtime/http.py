"""The health and metrics server every service runs: /healthz, /readyz, /metrics.

It runs aiohttp on its own thread and event loop, so the service's main loop (a blocking Kafka
poll loop) stays simple. Liveness means the main loop still turns; readiness is the service's own
answer (partitions assigned and recent progress).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)
ReadyCheck = Callable[[], tuple[bool, str]]


class Heartbeat:
    """The main loop beats on every turn; /healthz fails when it stops beating."""

    def __init__(self, max_silence: float = 120.0) -> None:
        self.max_silence = max_silence
        self._last = time.monotonic()

    def beat(self) -> None:
        self._last = time.monotonic()

    @contextlib.contextmanager
    def busy(self, max_seconds: float) -> Iterator[None]:
        """Beat while a long step is in hand, for at most `max_seconds`: a step that takes longer
        is stuck, and the watchdog ends the process as if the loop had stopped turning."""
        done = threading.Event()

        def beat_while_busy() -> None:
            deadline = time.monotonic() + max_seconds
            while not done.wait(1.0) and time.monotonic() < deadline:
                self.beat()

        threading.Thread(target=beat_while_busy, daemon=True, name="busy-heartbeat").start()
        try:
            yield
        finally:
            done.set()
            self.beat()

    def alive(self) -> tuple[bool, str]:
        silence = time.monotonic() - self._last
        return silence <= self.max_silence, f"main loop last turned {silence:.1f}s ago"

    def start_watchdog(self, exit_code: int = 70) -> None:
        """End the process when the main loop stays silent past max_silence.

        A service that cannot make progress must not linger alive and stuck (a hung client call,
        a lock that never comes): it exits non-zero and its supervisor restarts it, which is
        always safe here because every stage resumes from durable offsets.
        """

        def watch() -> None:
            while True:
                time.sleep(min(5.0, self.max_silence / 4))
                ok, detail = self.alive()
                if not ok:
                    log.critical("watchdog: %s; exiting so the supervisor restarts us", detail)
                    try:  # where it was stuck, for the log; the real stderr (faust wraps sys's)
                        faulthandler.dump_traceback(file=sys.__stderr__ or 2, all_threads=True)
                    finally:
                        os._exit(exit_code)

        threading.Thread(target=watch, daemon=True, name="watchdog").start()


def build_app(
    heartbeat: Heartbeat, ready: ReadyCheck, client_max_size: int = 1024**2
) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        ok, detail = heartbeat.alive()
        return web.Response(status=200 if ok else 503, text=detail + "\n")

    async def readyz(_: web.Request) -> web.Response:
        ok, detail = ready()
        return web.Response(status=200 if ok else 503, text=detail + "\n")

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application(client_max_size=client_max_size)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


class HealthServer:
    """Serves an aiohttp app on a daemon thread until stop()."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._app, self._host, self._port = app, host, port
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app, access_log=None)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="http")

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)

    async def _serve(self) -> None:
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
