"""``type: rest`` against inputs the other tests do not use: odd record containers, scalar
records, gzip, Link headers with several relations and relative URLs, an empty cursor,
total=0, short pages mid-way, unicode keys, wide records and a 30 MB page. Nothing may
vanish: records read = published + quarantined + skipped."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lockgate
from tests.run.helpers import make_project
from tests.sources.rest_server import Reply, Request, Server, running

pytest.importorskip("httpx")


@pytest.fixture
def server() -> Iterator[Server]:
    with running() as s:
        yield s


def run(root: Path) -> Any:
    result = lockgate.run(root)
    step = result.steps[0]
    if result.ok:
        assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    return step


def project(root: Path, server: Server, **source: Any) -> Path:
    src = {"type": "rest", "base_url": server.url, "retry": {"attempts": 0}, **source}
    return make_project(root, [{"name": "items", "source": src, "retry": {"retries": 0}}])


def table(root: Path) -> list[dict[str, Any]]:
    return sorted(lockgate.read(root, "items").to_pylist(), key=lambda r: r["id"])


def test_records_key_missing_null_or_an_object(tmp_path: Path, server: Server) -> None:
    bodies: dict[int, Any] = {1: {"data": [{"id": 1}]}, 2: {"data": {"id": 2}}, 3: {"data": None}}
    server.route("/a", lambda r: (200, {}, bodies[int(r.query["page"])]))
    root = project(
        tmp_path / "a", server, path="/a", paginator={"type": "page_number"}, record_path="data"
    )
    step = run(root)
    # an object is one record; null is an empty page (the last one)
    assert step.status == "success" and [r["id"] for r in table(root)] == [1, 2]
    bodies[2] = {"error": "rate limited", "items": []}  # the key is missing: not a silent end
    step = run(
        project(
            tmp_path / "b", server, path="/a", paginator={"type": "page_number"}, record_path="data"
        )
    )
    assert step.status == "failed" and "record_path 'data' not found" in (step.error or "")


def test_scalar_records_are_quarantined_not_dropped(tmp_path: Path, server: Server) -> None:
    server.route("/s", lambda r: (200, {}, {"data": [1, "two", None, True, 2.5, {"id": 6}]}))
    root = project(tmp_path / "p", server, path="/s", record_path="data")
    step = run(root)
    assert step.status == "success", step.error
    assert step.rows_in == 6 and step.rows_out == 1 and step.rows_quarantined == 5
    reasons = [r["_lg_reason"] for r in lockgate.read(root, "items", quarantine=True).to_pylist()]
    assert all(r.startswith("page 1, record ") for r in reasons), reasons


def test_gzip_encoded_pages(tmp_path: Path, server: Server) -> None:
    def gz(r: Request) -> Reply:
        assert "gzip" in r.headers.get("accept-encoding", "")
        p = int(r.query["page"])
        rows = [{"id": i, "s": "x" * 50} for i in range((p - 1) * 500, p * 500)] if p <= 3 else []
        return 200, {"Content-Encoding": "gzip"}, gzip.compress(json.dumps(rows).encode())

    server.route("/gz", gz)
    # max_page_bytes is checked on the decoded body: 25 kB compressed, ~30 kB decoded
    root = project(tmp_path / "p", server, path="/gz", paginator={"type": "page_number"})
    step = run(root)
    assert step.status == "success", step.error
    assert [r["id"] for r in table(root)] == list(range(1500))
    small = project(
        tmp_path / "q", server, path="/gz", paginator={"type": "page_number"}, max_page_bytes=20_000
    )
    assert "exceeds max_page_bytes 20,000" in (run(small).error or "")


def test_link_header_with_several_rels_and_relative_urls(tmp_path: Path, server: Server) -> None:
    def linked(r: Request) -> Reply:
        p = int(r.query.get("page", "1"))
        links = [f'<{r.path}?page=1>; rel="first"', '</v/l?page=9>; rel="last"']
        if p < 4:
            # page 1: a relative query; page 2: a relation list; page 3: path-relative
            nxt = {
                1: f'<?page={p + 1}>; rel="next"',
                2: f'<l?page={p + 1}>; rel="next last"',
                3: f'</v/l?page={p + 1}>; rel="prefetch next"',
            }[p]
            links.insert(1, nxt)
        if p > 1:
            links.append(f'<?page={p - 1}>; rel="prev"')
        return 200, {"Link": ", ".join(links)}, [{"id": p}]

    server.route("/v/l", linked)
    root = project(tmp_path / "p", server, path="/v/l", paginator={"type": "header_link"})
    step = run(root)
    assert step.status == "success", step.error
    assert [r["id"] for r in table(root)] == [1, 2, 3, 4]


def test_an_empty_string_cursor_ends_and_total_zero(tmp_path: Path, server: Server) -> None:
    def cur(r: Request) -> Reply:
        c = r.query.get("cursor")
        if c is None:
            return 200, {}, {"data": [{"id": 1}], "next": "b"}
        return 200, {}, {"data": [{"id": 2}], "next": ""}

    server.route("/c", cur)
    root = project(
        tmp_path / "a",
        server,
        path="/c",
        record_path="data",
        paginator={"type": "cursor", "cursor_path": "next"},
    )
    assert [r["id"] for r in table(root)] == [1, 2] if run(root).status == "success" else False
    assert len(server.requests("/c")) == 2
    server.route("/z", lambda r: (200, {}, {"data": [], "total": 0}))
    for pag in (
        {"type": "offset", "total_path": "total"},
        {"type": "page_number", "total_path": "total"},
    ):
        root = project(tmp_path / pag["type"], server, path="/z", record_path="data", paginator=pag)
        step = run(root)
        assert step.status == "success" and step.rows_in == 0, step.error


def test_a_short_page_mid_way_does_not_end_offset_paging(tmp_path: Path, server: Server) -> None:
    sizes = [10, 3, 10, 7, 0]  # the API returns fewer than limit on page 2, then more
    starts = [sum(sizes[:i]) for i in range(len(sizes))]

    def off(r: Request) -> Reply:
        o = int(r.query["offset"])
        i = starts.index(o)
        return 200, {}, {"data": [{"id": o + k} for k in range(sizes[i])]}

    server.route("/o", off)
    root = project(
        tmp_path / "p",
        server,
        path="/o",
        record_path="data",
        paginator={"type": "offset", "limit": 10},
    )
    step = run(root)
    assert step.status == "success", step.error
    assert [r["id"] for r in table(root)] == list(range(30))


def test_unicode_keys_and_a_record_with_1000_fields(tmp_path: Path, server: Server) -> None:
    wide = {"id": 1, **{f"f{i}": i for i in range(999)}}
    uni = {"id": 2, "naïve ключ": "ü", "emoji 🚀": 3, "f0": 7}
    server.route("/u", lambda r: (200, {}, [wide, uni]))
    root = project(tmp_path / "p", server, path="/u")
    step = run(root)
    assert step.status == "success", step.error
    rows = table(root)
    assert len(rows) == 2 and len(rows[0]) >= 1002
    assert rows[0]["f998"] == 998 and rows[1]["naïve ключ"] == "ü" and rows[1]["emoji 🚀"] == 3


@pytest.mark.slow
def test_a_30_mb_page(tmp_path: Path, server: Server) -> None:
    rows = [{"id": i, "text": "y" * 280} for i in range(100_000)]
    body = json.dumps(rows).encode()
    assert len(body) > 30_000_000
    server.route("/big", lambda r: (200, {}, body))
    root = project(tmp_path / "p", server, path="/big")
    step = run(root)
    assert step.status == "success", step.error
    assert step.rows_out == 100_000


def test_integers_beyond_64_bits_stay_exact(tmp_path: Path, server: Server) -> None:
    big, huge = 123456789012345678901234567890, 2**130 + 1
    body = json.dumps([{"id": 1, "v": big, "w": huge}, {"id": 2, "v": 5, "w": 1}])
    server.route("/big", lambda r: (200, {}, body))
    root = project(tmp_path / "p", server, path="/big")
    step = run(root)
    assert step.status == "success", step.error
    rows = table(root)
    # DuckDB's reader alone makes them DOUBLE (1.2345678901234568e+29): rounded silently
    assert int(rows[0]["v"]) == big and int(rows[1]["v"]) == 5
    assert rows[0]["w"] == str(huge) and rows[1]["w"] == "1"
