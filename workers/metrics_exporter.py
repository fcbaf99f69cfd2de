"""A worker process's own /metrics, for deployments where workers and the web run apart.

On one host (`runstack`, a VM) the web's /metrics already sums every process's counters through
prometheus-client's multiprocess directory. A worker pod in Kubernetes shares no directory with the
web pods, so with GREENROOM_WORKER_METRICS_PORT set each worker process serves its own counters and
histograms (jobs started/succeeded/failed/retried, durations, queue waits) on that port, under the
same access rules as the web's /metrics (GREENROOM_METRICS_TOKEN, GREENROOM_METRICS_ALLOW). The
queue and fleet gauges stay with the web's /metrics: they are the same whoever reads them.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from workers.metrics import DEFAULT_ALLOW, access_refusal

logger = logging.getLogger(__name__)


def worker_registry() -> CollectorRegistry:
    """This worker's counters: its multiprocess files (all processes of this host) or its own registry."""
    directory = getattr(settings, "GREENROOM_METRICS_DIR", "")
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return registry


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self._answer(404, b"not found\n", "text/plain; charset=utf-8")
            return
        refusal = access_refusal(
            remote_addr=self.client_address[0],
            authorization=self.headers.get("Authorization", ""),
            token=getattr(settings, "GREENROOM_METRICS_TOKEN", ""),
            allow=getattr(settings, "GREENROOM_METRICS_ALLOW", DEFAULT_ALLOW),
        )
        if refusal is not None:
            self._answer(403, f"403 Forbidden: {refusal}\n".encode(), "text/plain; charset=utf-8")
            return
        encode, content_type = choose_encoder(self.headers.get("Accept", ""))
        self._answer(200, encode(worker_registry()), content_type)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("metrics exporter: " + format, *args)


def start(port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:  # noqa: S104 - a pod's own address
    """Serve GET /metrics on `port` from a daemon thread; returns the server (tests shut it down)."""
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="greenroom-metrics", daemon=True).start()
    logger.info("worker metrics on http://%s:%d/metrics", host, server.server_address[1])
    return server
