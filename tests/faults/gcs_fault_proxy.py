"""A fault proxy in front of the GCS emulator: the bucket failures of the fault suite.

    python -m tests.faults.gcs_fault_proxy --port P --upstream http://127.0.0.1:E --seed S

It forwards every request to the emulator unchanged, except while a fault mode is on; then a
seeded fraction of requests meets the fault:

- `503`: answered with 503 and a GCS-style JSON error body, never forwarded;
- `reset`: the connection is reset (RST) before any answer, never forwarded;
- `stall`: held without an answer for `--stall-seconds` (longer than the bucket client's read
  timeout), then reset, never forwarded;
- `lost_response`: a write (POST, PUT, PATCH, DELETE) is forwarded and takes effect in the
  emulator, then the connection is reset instead of returning the answer: "the upload
  succeeded but the response was lost". Reads pass.

The suite switches modes over HTTP on the proxy's own port (GCS paths never start with `/_`):
`POST /_fault {"mode": "503", "fraction": 0.3, "seconds": 5}`; `GET /_fault` returns the mode
and how many requests met each fault.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import struct
import time
import urllib.request
from collections import Counter
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

MODES = ("503", "reset", "stall", "lost_response")
CONTROL_PATH = "/_fault"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Not forwarded either way: they describe one hop, and aiohttp sets its own.
HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade"}
)
# What GCS answers when it sheds load (the JSON API's error shape).
UNAVAILABLE = {
    "error": {
        "code": 503,
        "message": "We encountered an internal error. Please try again.",
        "errors": [
            {
                "message": "We encountered an internal error. Please try again.",
                "domain": "global",
                "reason": "backendError",
            }
        ],
    }
}


class FaultProxy:
    def __init__(self, upstream: str, seed: int, stall_seconds: float) -> None:
        self.upstream = upstream.rstrip("/")
        self.rng = random.Random(seed)
        self.stall_seconds = stall_seconds
        self.mode, self.fraction, self.until = "pass", 0.0, 0.0
        self.counts: Counter[str] = Counter()
        self._session: ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", CONTROL_PATH, self.control)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        app.on_cleanup.append(self._close)
        return app

    async def control(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            order = await request.json()
            mode = str(order.get("mode", "pass"))
            if mode not in (*MODES, "pass"):
                raise web.HTTPBadRequest(text=f"unknown mode {mode}")
            self.mode, self.fraction = mode, float(order.get("fraction", 1.0))
            self.until = time.monotonic() + float(order.get("seconds", 0))
        return web.json_response({"mode": self._active(), "counts": dict(self.counts)})

    async def forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        fault = self._draw(request.method)
        self.counts["requests"] += 1
        if fault:
            self.counts[fault] += 1
        if fault == "503":
            return web.json_response(UNAVAILABLE, status=503)
        if fault == "stall":
            await asyncio.sleep(self.stall_seconds)
        if fault in ("reset", "stall"):
            return _reset(request)
        response = await self._upstream(request, body)
        return _reset(request) if fault == "lost_response" else response

    def _active(self) -> str:
        return self.mode if time.monotonic() < self.until else "pass"

    def _draw(self, method: str) -> str | None:
        mode = self._active()
        if mode == "pass" or (mode == "lost_response" and method not in WRITES):
            return None
        return mode if self.rng.random() < self.fraction else None

    async def _upstream(self, request: web.Request, body: bytes) -> web.Response:
        if self._session is None:
            # Bytes pass through as they are (no decompression), and the emulator's own
            # slowness is not a fault of ours: no client timeout beyond a generous one.
            self._session = ClientSession(auto_decompress=False, timeout=ClientTimeout(300))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with self._session.request(
            request.method,
            self.upstream + request.rel_url.path_qs,
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as r:
            data = await r.read()
            kept = {k: v for k, v in r.headers.items() if k.lower() not in HOP_HEADERS}
            return web.Response(status=r.status, body=data, headers=kept)

    async def _close(self, _: web.Application) -> None:
        if self._session is not None:
            await self._session.close()


def _reset(request: web.Request) -> web.Response:
    """Drop the connection with a TCP RST (the client reads ECONNRESET, not a clean close).

    The returned response is never written: aiohttp finds the transport gone and lets go.
    """
    transport = request.transport
    if transport is not None:
        sock: socket.socket | None = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=599)


def set_mode(proxy_url: str, mode: str, fraction: float, seconds: float) -> dict[str, Any]:
    """Switch a running proxy into `mode` for `seconds` (the suite's side of the control port)."""
    order = json.dumps({"mode": mode, "fraction": fraction, "seconds": seconds}).encode()
    req = urllib.request.Request(
        proxy_url + CONTROL_PATH, data=order, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        answer: dict[str, Any] = json.loads(r.read())
    return answer


def stats(proxy_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(proxy_url + CONTROL_PATH, timeout=10) as r:
        answer: dict[str, Any] = json.loads(r.read())
    return answer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="The emulator, http://host:port.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stall-seconds", type=float, default=40.0)
    args = parser.parse_args(argv)
    proxy = FaultProxy(args.upstream, args.seed, args.stall_seconds)
    web.run_app(proxy.app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
