"""``lockgate run --pushgateway URL`` pushes the run's metrics (Pushgateway's PUT API, a local
receiver standing in); an unreachable gateway never fails the run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from lockgate.cli.app import app
from tests.ops.helpers import scheduled_project


@contextmanager
def gateway() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    got: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=http.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{http.server_address[1]}", got
    finally:
        http.shutdown()
        http.server_close()


def test_run_pushes_its_metrics(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    with gateway() as (url, got):
        out = CliRunner().invoke(app, ["run", "--pushgateway", url, "--project", str(root)])
    assert out.exit_code == 0, out.output
    ((path, body),) = got
    assert path.startswith("/metrics/job/lockgate/project/")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    assert {
        "lockgate_runs",
        "lockgate_steps",
        "lockgate_rows",
        "lockgate_step_cpu_seconds",
    } <= names


def test_an_unreachable_gateway_does_not_fail_the_run(tmp_path: Path) -> None:
    root = scheduled_project(tmp_path / "p")
    out = CliRunner().invoke(
        app, ["run", "--pushgateway", "http://127.0.0.1:9", "--project", str(root)]
    )
    assert out.exit_code == 0, out.output
