"""The HTTP side: the probe paths of the backend, frontend and nginx settings, and the
self-check. Standard library only, one thread per request."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from . import checks

# "/" is the frontend's and nginx's probe, /health the backend's (settings/defaults.py);
# the others are what operators and load balancers commonly try.
HEALTH_PATHS = frozenset({"/", "/health", "/healthz", "/ready", "/readyz", "/livez"})
SELFCHECK_PATHS = frozenset({"/selfcheck", "/api/selfcheck"})


class Handler(BaseHTTPRequestHandler):
    server_version = "ai-infra-test-app"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in HEALTH_PATHS:
            self._send(
                HTTPStatus.OK,
                {"status": "ok", "app": os.environ.get("APP_NAME", "ai-infra-test-app"), "pod": socket.gethostname()},
            )
        elif path in SELFCHECK_PATHS:
            report = checks.selfcheck()
            self._send(HTTPStatus.OK if report["ok"] else HTTPStatus.SERVICE_UNAVAILABLE, report)
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no route {path}"})

    def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = (json.dumps(body, sort_keys=True) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # Probes every few seconds would drown everything else: log the rest only.
        if self.path.split("?", 1)[0] not in HEALTH_PATHS:
            super().log_message(format, *args)


def serve(address: str, port: int) -> None:
    """Serve until SIGTERM (the kubelet's stop) or SIGINT, then finish open requests."""
    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    stop = threading.Event()

    def shutdown(_signum: int, _frame: object) -> None:
        if not stop.is_set():
            stop.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    print(f"ai-infra-test-app: serving on {address}:{port}", flush=True)
    server.serve_forever()
    server.server_close()
    print("ai-infra-test-app: stopped", flush=True)
