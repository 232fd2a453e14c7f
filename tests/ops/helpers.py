"""A tiny scheduled project and a local HTTP receiver for alert tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.run.helpers import csv_source, make_project


def scheduled_project(root: Path, **config: Any) -> Path:
    """One CSV source ``orders`` (2 rows, a not-null check), scheduled hourly."""
    cfg: dict[str, Any] = {
        "schedules": [{"name": "hourly", "cron": "0 * * * *", "select": ["orders"]}],
        **config,
    }
    ds = csv_source(
        "orders",
        "data/orders.csv",
        checks=[{"type": "not_null", "column": "id"}],
        freshness={"warn_after": "1h", "error_after": "2h"},
    )
    return make_project(
        root, [ds], files={"data/orders.csv": "id,amount\n1,10\n2,20\n"}, config=cfg
    )


class Receiver:
    """Collects JSON POSTs; answers ``status`` (set it to 500 to make delivery fail)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.status = 200
        self.got = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(n))
                self.send_response(receiver.status)
                self.end_headers()
                with receiver.got:
                    receiver.bodies.append(body)
                    receiver.got.notify_all()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hooks/T0KEN-s3cr3t-path"


@contextmanager
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    t = threading.Thread(target=r.http.serve_forever, daemon=True)
    t.start()
    try:
        yield r
    finally:
        r.http.shutdown()
        r.http.server_close()
