"""The REST spill's fast path (chunks of page-arrays staged in the background, later chunks
read with the first chunk's types, the GC paused while pages are read) against its fallback
(the spill joined into NDJSON and staged whole: one strict read, or the record-level path):
on random pages — nested objects, unicode, nulls, huge integers, NaN, records that are not
objects, repeated keys, a key that only shows up late — both publish the same table and the
same quarantine, and records read = published + quarantined + skipped."""

from __future__ import annotations

import gc
import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.sources import _rest_spill
from lockgate.sources._records import drop
from tests.run.helpers import make_project
from tests.sources.rest_server import Reply, Request, Server, running

pytest.importorskip("httpx")

PER_PAGE = 25
TEXT = ["plain", "ünïcødé", "日本語", "emoji 🦆", 'quote " and \\ slash', "line\nbreak", "\u2028"]


@pytest.fixture
def server() -> Iterator[Server]:
    with running() as s:
        yield s


def value(rng: random.Random, kind: str) -> Any:
    if rng.random() < 0.15:
        return None
    if kind == "text":
        return rng.choice(TEXT) + str(rng.randrange(100))
    if kind == "int":
        return rng.randrange(-(2**40), 2**40)
    if kind == "float":
        return rng.choice([0.1, -2.5, 1e300, 3.0, 12345.678])
    if kind == "nested":
        return rng.choice([{"a": [1, {"b": "x"}]}, [], [1, "two", None], {"k": {"deep": True}}])
    return rng.random() < 0.5


def pages(seed: int, n_pages: int, odd: str) -> list[list[Any]]:
    """Random pages; ``odd``: with what the background staging refuses — ``huge``: an
    integer beyond 64 bits in a later chunk and a key first seen on the last page;
    ``records``: a record that is not an object and a NaN (the record-level path)."""
    rng = random.Random(seed)
    out: list[list[Any]] = []
    for p in range(n_pages):
        page: list[Any] = []
        for i in range(PER_PAGE):
            rid = p * PER_PAGE + i
            if rng.random() < 0.05 and rid > 0:
                rid = rng.randrange(rid)  # read again on a later page: the later copy wins
            rec: dict[str, Any] = {"id": rid}
            for key, kind in (("t", "text"), ("n", "int"), ("x", "float"), ("o", "nested")):
                if rng.random() < 0.9:  # sometimes absent
                    rec[key] = value(rng, kind)
            rec["flag"] = value(rng, "bool")
            page.append(rec)
        out.append(page)
    if odd == "huge":
        out[5][3]["n"] = 2**70  # beyond 64 bits: the stdlib parser reads that page
        out[-1][0]["late"] = "first seen on the last page"
    elif odd == "records":
        out[2][4] = "not an object"
        out[3][5]["x"] = float("nan")
    return out


def serve(server: Server, data: list[list[Any]]) -> None:
    def fn(r: Request) -> Reply:
        p = int(r.query["page"])
        body = data[p - 1] if p <= len(data) else []
        return 200, {}, json.dumps({"data": body}).encode()  # NaN written as NaN

    server.route("/r", fn)


def run_once(root: Path, server: Server) -> tuple[Any, list[Any], list[Any]]:
    make_project(
        root,
        [
            {
                "name": "items",
                "source": {
                    "type": "rest",
                    "base_url": server.url,
                    "path": "/r",
                    "paginator": {"type": "page_number"},
                    "record_path": "data",
                    "primary_key": ["id"],
                    "retry": {"attempts": 0},
                },
                "retry": {"retries": 0},
            }
        ],
    )
    result = lockgate.run(root)
    step = result.steps[0]
    assert result.ok, step.error
    assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    table = lockgate.read(root, "items")
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    for r in rows:  # NaN != NaN: compared as text
        r.update({k: "NaN" for k, v in r.items() if isinstance(v, float) and v != v})
    try:
        q = lockgate.read(root, "items", quarantine=True).to_pylist()
    except Exception:  # no quarantine table: nothing quarantined
        q = []
    quarantined = sorted(
        (r["_lg_source_file"], r["_lg_line"], r["_lg_reason"], r.get("_lg_raw")) for r in q
    )
    counts = (step.rows_in, step.rows_out, step.rows_quarantined, step.rows_skipped)
    return (table.schema, counts), rows, quarantined


@pytest.mark.slow
@pytest.mark.parametrize("seed,odd", [(1, ""), (2, ""), (3, "huge"), (4, "records")])
def test_fast_path_and_fallback_publish_the_same(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch, seed: int, odd: str
) -> None:
    monkeypatch.setattr(_rest_spill, "CHUNK_BYTES", 2_000)  # a chunk every page or two
    monkeypatch.setattr(_rest_spill, "SAMPLE_RECORDS", 2 * PER_PAGE)
    serve(server, pages(seed, 12, odd))
    real = _rest_spill.ChunkedSpill.finish
    staged: list[bool] = []

    def spy(self: _rest_spill.ChunkedSpill) -> bool:
        staged.append(real(self))
        return staged[-1]

    monkeypatch.setattr(_rest_spill.ChunkedSpill, "finish", spy)
    fast = run_once(tmp_path / "fast", server)
    assert staged == [not odd]  # clean pages: every chunk staged in the background

    def fallback(self: _rest_spill.ChunkedSpill) -> bool:
        real(self)
        drop(self.con, self.table)  # as if a chunk had not fit: the spill is staged whole
        return False

    monkeypatch.setattr(_rest_spill.ChunkedSpill, "finish", fallback)
    slow = run_once(tmp_path / "slow", server)
    assert fast == slow
    (_, (rows_in, _, quarantined, skipped)), rows, _ = fast
    assert rows_in == 12 * PER_PAGE and skipped > 0  # repeated ids were skipped
    assert quarantined == (1 if odd == "records" else 0)  # "not an object" (NaN is kept)
    if odd == "huge":
        assert [r["late"] for r in rows if r["late"]] == ["first seen on the last page"]
        assert 2**70 in {r["n"] for r in rows}  # exact (HUGEINT), not a rounded double
    assert gc.isenabled()


def test_joined_spill_is_the_records_as_read(tmp_path: Path) -> None:
    """The fallback's NDJSON: one record a line, each written by the encoder that read its
    page (orjson for exact pages; the stdlib for huge integers, NaN, lone surrogates)."""
    from lockgate.sources._rest_http import Page, loads

    bodies = [
        b'[{"a":1,"s":"\\u00e9"},{"a":2,"o":{"k":[1,null]}}]',
        b'[{"a":123456789012345678901234567890},{"a":NaN},{"s":"\\ud800"}]',
        b'["x",{"a":-0.0}]',
    ]
    spill_pages = []
    for n, body in enumerate(bodies, 1):
        records, exact = loads(body)
        spill_pages.append(Page(n, f"http://h/?page={n}", records, exact))
    con = pytest.importorskip("duckdb").connect()
    with _rest_spill.ChunkedSpill(con, "t", tmp_path, None, sample=1) as spill:
        spill.write(iter(spill_pages))
        assert not spill.finish()  # NaN and "x": the record-level path
        lines = spill.joined().read_bytes().split(b"\n")
    assert lines == [
        b'{"a":1,"s":"\xc3\xa9"}',
        b'{"a":2,"o":{"k":[1,null]}}',
        b'{"a":123456789012345678901234567890}',
        b'{"a":NaN}',
        b'{"s":"\xed\xa0\x80"}',  # the lone surrogate stays invalid UTF-8: quarantined
        b'"x"',
        b'{"a":-0.0}',
        b"",
    ]
    assert spill.index == [
        (1, 1, "http://h/?page=1"),
        (3, 2, "http://h/?page=2"),
        (6, 3, "http://h/?page=3"),
    ]
