"""A real Alertmanager (Debian's package `prometheus-alertmanager`) for tests, on a free port."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.local_server import LocalServer
from tests.deploy.prometheus_server import REPO, yaml

ALERTMANAGER_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


def alertmanager_tool(name: str) -> str:
    """amtool or the server; Debian names the server prometheus-alertmanager."""
    for candidate in (name, f"prometheus-{name}"):
        if found := shutil.which(candidate):
            return found
    pytest.skip(f"{name} not installed (apt-get install prometheus-alertmanager)")


class Webhook:
    """An HTTP endpoint that keeps what Alertmanager POSTs, by path (one per receiver)."""

    def __init__(self) -> None:
        received: list[tuple[str, dict[str, Any]]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                received.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:  # quiet: pytest shows failures only
                pass

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def notifications(self, receiver: str, alertname: str, status: str) -> list[dict[str, Any]]:
        """Notifications to `receiver` whose group is `alertname` in state `status`."""
        return [
            body
            for path, body in self.received
            if path == f"/{receiver}"
            and body["status"] == status
            and body["groupLabels"].get("alertname") == alertname
        ]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class AlertmanagerServer(LocalServer):
    """The repository's alertmanager.yml, each receiver's webhook at `webhook`/<receiver name>.

    `group_seconds` replaces every group_wait and group_interval of the route tree (the tree
    itself unchanged), so a test sees a notification, and its resolution, in seconds.
    """

    NAME = "alertmanager"

    def __init__(
        self,
        home: Path,
        port: int,
        webhook: str = "http://127.0.0.1:9",
        group_seconds: int | None = None,
    ) -> None:
        self.home, self.port = home, port
        config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
        for receiver in config["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = f"{webhook}/{receiver['name']}"
        if group_seconds is not None:
            routes = [config["route"], *config["route"].get("routes", [])]
            for route in routes:
                for key in ("group_wait", "group_interval"):
                    if key in route or route is config["route"]:
                        route[key] = f"{group_seconds}s"
        self.config = home / "alertmanager.yml"
        self.config.write_text(yaml.safe_dump(config))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.launch(
            [
                alertmanager_tool("alertmanager"),
                f"--config.file={self.config}",
                f"--storage.path={self.home / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",  # one instance: no gossip port to collide on
                "--log.level=warn",
            ]
        )

    def alerts(self) -> list[dict[str, Any]]:
        """/api/v2/alerts: active, silenced and inhibited alerts, with their status."""
        body = self._get("/api/v2/alerts")
        assert body is not None, "Alertmanager does not answer"
        found: list[dict[str, Any]] = json.loads(body)
        return found

    def post(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            self.url + "/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
