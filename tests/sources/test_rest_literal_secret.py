"""A literal API key written into ``base_url``'s query or the endpoint ``params`` (not a
``${VAR}`` reference) is hidden everywhere lockgate writes or prints: the CLI's output and
logs (``--debug``), errors, the quarantine's page URLs, the state store file, ``show``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import lockgate
from tests.cli.helpers import subprocess_cli
from tests.run.helpers import make_project
from tests.sources.rest_server import Reply, Request, Server, running

pytest.importorskip("httpx")

URL_KEY = "LitKey-7f3a9c2e"
PARAM_KEY = "LitTok-b81d44a0"
HEADER_KEY = "LitHdr-5e6f7a8b"
SHORT = "ab12cd"  # a 6-character appid: hidden by its position and remembered as a secret


@pytest.fixture
def server() -> Iterator[Server]:
    with running() as s:
        yield s


def _leaks(text: str) -> list[str]:
    return [s for s in (URL_KEY, PARAM_KEY, HEADER_KEY, SHORT) if s in text]


def test_literal_keys_in_base_url_and_params_never_show(tmp_path: Path, server: Server) -> None:
    def pages(r: Request) -> Reply:
        assert r.query["api_key"] == URL_KEY and r.query["app_key"] == PARAM_KEY
        assert r.query["appid"] == SHORT
        assert r.headers["authorization"] == f"Token {HEADER_KEY}"
        p = int(r.query["page"])
        if p == 1:  # a record that is quarantined (with its page URL)
            return 200, {}, {"data": [{"id": 1, "v": 1}, {"id": 2, "v": "not a number"}]}
        if p == 2 and r.query.get("fail") == "1":  # an error body echoing the keys
            return 400, {}, f"bad request for {URL_KEY} / {PARAM_KEY} {SHORT} {HEADER_KEY}"
        return 200, {}, {"data": []}

    server.route("/v1/items", pages)
    src = {
        "type": "rest",
        "base_url": f"{server.url}/v1?api_key={URL_KEY}&appid={SHORT}",
        "path": "/items",
        "params": {"app_key": PARAM_KEY, "fail": "0"},
        "headers": {"Authorization": f"Token {HEADER_KEY}", "Accept": "application/json"},
        "paginator": {"type": "page_number"},
        "record_path": "data",
        "columns": {"id": "BIGINT", "v": "BIGINT"},
        "retry": {"attempts": 0},
    }
    root = make_project(tmp_path / "p", [{"name": "items", "source": src}])
    outputs = []
    ok = subprocess_cli("--debug", "run", "-p", str(root))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    outputs += [ok.stdout, ok.stderr]
    shown = subprocess_cli("show", "items", "-p", str(root))
    assert shown.returncode == 0 and "write: append" in shown.stdout
    outputs += [shown.stdout, shown.stderr]
    # a failing page: its error names the page URL and quotes the body
    failing = {**src, "params": {**src["params"], "fail": "1"}}
    bad = make_project(tmp_path / "q", [{"name": "items", "source": failing}])
    failed = subprocess_cli("--debug", "run", "-p", str(bad))
    assert failed.returncode != 0 and "HTTP 400" in failed.stdout + failed.stderr
    outputs += [failed.stdout, failed.stderr]
    q = lockgate.read(root, "items", quarantine=True).to_pylist()
    assert len(q) >= 1 and "/v1/items?" in q[0]["_lg_source_file"]
    outputs += [str(q)]
    for project in (root, bad):
        for path in (project / ".lockgate").rglob("*"):
            if path.is_file():
                outputs.append(path.read_bytes().decode("latin-1"))
    leaked = [(i, _leaks(o)) for i, o in enumerate(outputs) if _leaks(o)]
    assert not leaked, leaked
