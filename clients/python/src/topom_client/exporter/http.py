"""The /metrics endpoint: the latest snapshot, rendered once per round.

The follower calls :meth:`MetricsPage.update` with each new snapshot; the
page renders it there, in the follower's thread, so a scrape only copies
bytes (plus the per-scrape round age).
"""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from topom_client.exporter.metrics import age_family, build, render
from topom_client.exporter.snapshot import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class MetricsPage:
    def __init__(self, snapshot: Snapshot) -> None:
        self._lock = threading.Lock()
        self._snap = snapshot
        self._body = render(build(snapshot))

    def update(self, snap: Snapshot) -> None:
        body = render(build(snap))
        with self._lock:
            self._snap, self._body = snap, body

    def body(self) -> bytes:
        with self._lock:
            snap, body = self._snap, self._body
        age = age_family(snap, time.time())
        return body + render([age]) if age is not None else body

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics\n"]
        body = self.body()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE),
                                  ("Content-Length", str(len(body)))])
        return [body]


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per scrape would drown the useful logs


def serve(page: MetricsPage, host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """Serves ``page`` on ``host:port`` in a thread; answers the server and thread."""
    server = make_server(host, port, page, server_class=_Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return server, thread
