"""A real local HTTP server for the REST source tests (stdlib ``http.server`` in a thread).

A test registers handlers per path: ``server.route("/items", fn)`` where
``fn(request) -> (status, headers, body)``; ``request`` has ``path``, ``query`` (first value
per name), ``headers`` and ``n`` (how many requests that path got before, 0-based). Every
request is logged in ``server.log``.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    n: int


Reply = tuple[int, dict[str, str], bytes | str | Any]
Handler = Callable[[Request], Reply]


class Server:
    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.log: list[Request] = []
        self.lock = threading.Lock()
        self.url = ""

    def route(self, path: str, fn: Handler) -> None:
        """``fn`` answers ``path``; a path ending in ``/*`` answers every path under it."""
        self.routes[path] = fn

    def requests(self, path: str) -> list[Request]:
        return [r for r in self.log if r.path == path]

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply:
        parts = urlsplit(raw_path)
        with self.lock:
            n = sum(1 for r in self.log if r.path == parts.path)
            req = Request(method, parts.path, dict(parse_qsl(parts.query)), headers, body, n)
            self.log.append(req)
        fn = self.routes.get(parts.path)
        if fn is None:
            fn = next(
                (
                    f
                    for p, f in self.routes.items()
                    if p.endswith("/*") and parts.path.startswith(p[:-1])
                ),
                None,
            )
        if fn is None:
            return 404, {}, {"error": f"no route {parts.path}"}
        return fn(req)


def _make_handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, payload = server.handle(
                method, self.path, {k.lower(): v for k, v in self.headers.items()}, body
            )
            if isinstance(payload, bytes):
                data = payload
            elif isinstance(payload, str):
                data = payload.encode()
            else:
                data = json.dumps(payload).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            if "Content-Type" not in headers:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return H


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a step interrupted mid-request) is not a server error
        worth a traceback in the test output; anything else still prints."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            super().handle_error(request, client_address)


@contextmanager
def running() -> Iterator[Server]:
    server = Server()
    httpd = _Quiet(("127.0.0.1", 0), _make_handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
