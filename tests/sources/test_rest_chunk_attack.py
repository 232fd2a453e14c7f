"""Attacks on the reworked ``type: rest`` (chunked spill staged in the background,
prefetched pages, orjson with a stdlib fallback, merge on primary_key by default): the spill
is cut into many small chunks (``CHUNK_BYTES``, ``SAMPLE_RECORDS`` patched) so each attack
crosses chunk boundaries. Records read = published + quarantined + skipped; nothing
published on failure; no thread or temp file left behind."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.sources import _rest_spill
from tests.run.helpers import make_project
from tests.sources.rest_server import Reply, Request, Server, running

pytest.importorskip("httpx")

PER_PAGE = 20


@pytest.fixture
def server() -> Iterator[Server]:
    with running() as s:
        yield s


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_rest_spill, "CHUNK_BYTES", 600)  # ~1 page per chunk
    monkeypatch.setattr(_rest_spill, "SAMPLE_RECORDS", PER_PAGE)  # the first chunk: 1 page


def run(root: Path) -> Any:
    result = lockgate.run(root)
    step = result.steps[0]
    if result.ok:
        assert step.rows_in == step.rows_out + step.rows_quarantined + step.rows_skipped
    return step


def serve(server: Server, pages: list[Any], path: str = "/r") -> None:
    """``pages[i]`` (records, or raw bytes) is page i+1; past the end an empty page."""

    def fn(r: Request) -> Reply:
        p = int(r.query["page"])
        body = pages[p - 1] if p <= len(pages) else []
        return 200, {}, body if isinstance(body, bytes) else json.dumps(body).encode()

    server.route(path, fn)


def project(root: Path, server: Server, path: str = "/r", **dataset: Any) -> Path:
    src = {
        "type": "rest",
        "base_url": server.url,
        "path": path,
        "paginator": {"type": "page_number"},
        "retry": {"attempts": 0},
        **dataset.pop("source", {}),
    }
    return make_project(
        root, [{"name": "items", "source": src, "retry": {"retries": 0}, **dataset}]
    )


def rows(root: Path) -> list[dict[str, Any]]:
    return sorted(lockgate.read(root, "items").to_pylist(), key=lambda r: r["id"])


def page(p: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": p * PER_PAGE + i, "n": i, "pad": "x" * 20, **extra} for i in range(PER_PAGE)]


def no_rest_threads() -> bool:
    return not [t for t in threading.enumerate() if t.name.startswith("lockgate-rest")]


# ---- types that differ between chunk 1 and chunk 3 ----------------------------------------

DRIFT = {
    "int_then_string": (1, "one"),
    "int_then_float": (1, 2.5),
    "object_then_scalar": ({"a": 1}, 7),
    "null_then_string": (None, "late"),
    "bool_then_int": (True, 3),
}


#: a later value DuckDB converts to the sampled type without an error (2.5 into BIGINT, 3 into
#: BOOLEAN): kept as itself only inside the type-detection sample (the first SAMPLE_RECORDS
#: records, as a read of the whole spill) — beyond it, it is converted, as it was before chunks
CONVERTED = {"int_then_float", "bool_then_int"}


@pytest.mark.parametrize("kind", sorted(DRIFT))
def test_a_column_typed_differently_in_chunk_3(
    tmp_path: Path, server: Server, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if kind in CONVERTED:
        monkeypatch.setattr(_rest_spill, "SAMPLE_RECORDS", 4 * PER_PAGE)
    first, later = DRIFT[kind]
    pages = [page(0, v=first), page(1, v=first), page(2, v=later), page(3, v=first)]
    serve(server, pages)
    root = project(tmp_path / "p", server)
    step = run(root)
    assert step.status == "success", step.error
    got = rows(root)
    assert [r["id"] for r in got] == list(range(4 * PER_PAGE)) and step.rows_quarantined == 0
    for r in got:  # each value kept (as itself, the wider number type or JSON text)
        want = later if r["id"] // PER_PAGE == 2 else first
        assert same(r["v"], want), (r, want)


def same(got: Any, want: Any) -> bool:
    if got == want and type(got) is type(want):
        return True
    if isinstance(got, str):
        try:
            return bool(json.loads(got) == want)
        except ValueError:
            return False
    return isinstance(want, int | float) and not isinstance(want, bool) and got == want


def test_a_column_only_in_a_later_chunk(tmp_path: Path, server: Server) -> None:
    pages = [page(0), page(1), page(2, late="z"), page(3)]
    serve(server, pages)
    root = project(tmp_path / "p", server)
    step = run(root)
    assert step.status == "success", step.error
    got = rows(root)
    assert len(got) == 4 * PER_PAGE
    assert [r["late"] for r in got if r["late"] is not None] == ["z"] * PER_PAGE


def test_ints_and_floats_mixed_within_and_across_chunks(tmp_path: Path, server: Server) -> None:
    pages = [
        [{"id": i, "x": i if i % 2 else i + 0.5} for i in range(p * 10, p * 10 + 10)]
        for p in range(4)
    ]
    pages[3] = [{"id": i, "x": 10**12 + i} for i in range(30, 40)]  # ints only, later
    serve(server, pages)
    root = project(tmp_path / "p", server)
    step = run(root)
    assert step.status == "success", step.error
    got = rows(root)
    assert [r["x"] for r in got] == [
        (i if i % 2 else i + 0.5) if i < 30 else 10**12 + i for i in range(40)
    ]


def test_a_bad_record_in_the_last_chunk_only(tmp_path: Path, server: Server) -> None:
    pages = [page(p) for p in range(5)]
    pages[4][7] = "not an object"  # type: ignore[call-overload]
    serve(server, pages)
    root = project(tmp_path / "p", server)
    step = run(root)
    assert step.status == "success", step.error
    assert step.rows_in == 5 * PER_PAGE and step.rows_out == 5 * PER_PAGE - 1
    (bad,) = lockgate.read(root, "items", quarantine=True).to_pylist()
    assert bad["_lg_reason"].startswith("page 5, record 8"), bad


def test_a_primary_key_repeated_across_chunks_the_later_page_wins(
    tmp_path: Path, server: Server
) -> None:
    # every page repeats the same 20 keys: page 6 (the last chunk) must win for each
    pages = [[{"id": i, "v": f"p{p}"} for i in range(PER_PAGE)] for p in range(1, 7)]
    serve(server, pages)
    root = project(tmp_path / "p", server, source={"primary_key": ["id"]})
    step = run(root)
    assert step.status == "success", step.error
    assert step.rows_skipped == 5 * PER_PAGE
    assert {r["v"] for r in rows(root)} == {"p6"}


def test_composite_key_with_null_parts_merges(tmp_path: Path, server: Server) -> None:
    recs = [
        {"a": 1, "b": "x", "id": 1, "v": "old"},
        {"a": 1, "b": None, "id": 2, "v": "null part"},
        {"a": None, "b": None, "id": 3, "v": "no key"},
    ]
    serve(server, [recs, [{"a": 1, "b": "x", "id": 4, "v": "new"}]])
    root = project(tmp_path / "p", server, source={"primary_key": ["a", "b"]})
    first = run(root)
    assert first.status == "success", first.error
    # a key with a null part is no key: quarantined, not merged onto another record
    assert first.rows_in == 4 and first.rows_skipped == 1
    assert [r["v"] for r in rows(root)] == ["new"]
    assert first.rows_quarantined == 2
    second = run(root)
    assert second.status == "success" and [r["v"] for r in rows(root)] == ["new"]


# ---- failures while a chunk is being staged -------------------------------------------------


@pytest.mark.parametrize("failure", ["http_500", "not_json", "loop"])
def test_a_failing_page_during_background_staging(
    tmp_path: Path, server: Server, failure: str
) -> None:
    def fn(r: Request) -> Reply:
        p = int(r.query.get("page", "1"))
        if p < 5:
            return 200, {}, {"data": page(p), "next": str(p + 1)}
        if failure == "http_500":
            return 500, {}, {"error": "boom"}
        if failure == "not_json":
            return 200, {}, b"<html>oops</html>"
        return 200, {}, {"data": page(p), "next": "2"}  # back to page 2: a loop

    server.route("/f", fn)
    root = project(
        tmp_path / "p",
        server,
        path="/f",
        source={
            "record_path": "data",
            "paginator": {"type": "cursor", "cursor_path": "next", "cursor_param": "page"},
        },
    )
    step = run(root)
    assert step.status == "failed"
    assert {"http_500": "HTTP 500", "not_json": "not JSON", "loop": "pagination loop"}[failure] in (
        step.error or ""
    )
    assert not (root / "warehouse" / "items" / "_delta_log").exists()
    assert no_rest_threads()
    leftovers = [p for p in root.rglob("lg_rest_*")]
    assert leftovers == []


# ---- parser differences (orjson vs the stdlib fallback) ------------------------------------


def test_nan_infinity_negative_zero_and_1e400(tmp_path: Path, server: Server) -> None:
    body = (
        b'[{"id":101,"x":-0.0},{"id":102,"x":NaN},{"id":103,"x":Infinity},'
        b'{"id":104,"x":1e400},{"id":105,"x":1.5}]'
    )
    serve(server, [page(0, x=0.5), body])
    root = project(tmp_path / "p", server)
    step = run(root)
    assert step.status == "success", step.error
    assert step.rows_in == PER_PAGE + 5 and step.rows_out == PER_PAGE + 5
    got = {r["id"]: r["x"] for r in rows(root)}
    # as the stdlib reads them (orjson refuses them): the page goes the exact-less way
    assert str(got[101]) == "-0.0" and got[102] != got[102] and got[105] == 1.5
    assert got[103] == float("inf") and got[104] == float("inf")  # 1e400: beyond any double


def test_duplicate_keys_in_one_record(tmp_path: Path, server: Server) -> None:
    body = b'[{"id":1,"v":"a"},{"id":2,"v":"first","v":"second"}]'
    serve(server, [body])
    root = project(tmp_path / "p", server)
    step = run(root)
    assert step.status == "success", step.error
    assert step.rows_in == 2
    published = {r["id"]: r["v"] for r in rows(root)}
    # either quarantined (ambiguous) or the last value: never a silent first/other value
    assert published.get(2) in (None, "second") and (2 in published or step.rows_quarantined == 1)


def test_a_bom_and_a_lone_surrogate(tmp_path: Path, server: Server) -> None:
    serve(
        server,
        [
            page(0, s="ok"),
            b'\xef\xbb\xbf[{"id":100,"s":"bom"}]',
            b'[{"id":101,"s":"\\ud800"},{"id":102,"s":"fine"}]',
        ],
    )
    root = project(tmp_path / "p", server)
    step = run(root)
    assert step.status == "success", step.error
    got = {r["id"]: r["s"] for r in rows(root)}
    assert got[100] == "bom" and got[102] == "fine"
    assert 101 not in got and step.rows_quarantined == 1


def test_invalid_utf8_fails_the_step(tmp_path: Path, server: Server) -> None:
    serve(server, [page(0), b'[{"id":1,"s":"\xff\xfe"}]'])
    root = project(tmp_path / "p", server)
    step = run(root)
    assert step.status == "failed" and "not JSON" in (step.error or "")
    assert not (root / "warehouse" / "items" / "_delta_log").exists()


@pytest.mark.parametrize("depth", [300, 1500, 100_000])
def test_very_deep_nesting(tmp_path: Path, server: Server, depth: int) -> None:
    deep = b'{"id":2,"d":' + b"[" * depth + b"1" + b"]" * depth + b"}"
    serve(server, [page(0), b"[" + deep + b"]"])
    root = project(tmp_path / "p", server)
    step = run(root)
    # too deep to parse: the step fails with a clear message; else the record is kept or
    # quarantined — never an unexpected crash
    if step.status == "failed":
        assert "nested too deeply" in (step.error or ""), step.error
        assert depth > 1000
    else:
        assert step.rows_in == PER_PAGE + 1


def test_huge_ints_in_a_later_chunk_and_nested(tmp_path: Path, server: Server) -> None:
    big = 2**70 + 1
    late = json.dumps([{"id": 999, "n": big, "o": {"k": big}}]).encode()
    serve(server, [page(0), page(1), late])
    root = project(tmp_path / "p", server)
    step = run(root)
    assert step.status == "success", step.error
    rec = rows(root)[-1]
    assert int(rec["n"]) == big
    assert str(big) in str(rec["o"])


# ---- incremental, declared columns ------------------------------------------------------------


def test_incremental_cursor_out_of_order_across_chunks(tmp_path: Path, server: Server) -> None:
    stamps = ["2024-01-05", "2024-03-01", "2024-01-01", "2024-02-10"]
    pages = [
        [{"id": p * 10 + i, "ts": f"{stamps[p]}T00:00:0{i}"} for i in range(10)] for p in range(4)
    ]
    serve(server, pages)
    root = project(
        tmp_path / "p",
        server,
        source={"since_param": "since"},
        incremental={"cursor": "ts"},
    )
    step = run(root)
    assert step.status == "success", step.error
    run(root)
    since = [r.query.get("since") for r in server.requests("/r") if r.query["page"] == "1"]
    assert since[0] is None and since[1] is not None and since[1].startswith("2024-03-01T00:00:09")


def test_declared_columns_that_disagree_with_the_records(tmp_path: Path, server: Server) -> None:
    pages = [page(0), page(1), [{"id": 500, "n": "not a number", "pad": "y"}], page(3)]
    serve(server, pages)
    root = project(
        tmp_path / "p",
        server,
        source={"columns": {"id": "BIGINT", "n": "INTEGER", "pad": "VARCHAR"}},
    )
    step = run(root)
    assert step.status == "success", step.error
    assert step.rows_in == 3 * PER_PAGE + 1 and step.rows_quarantined == 1
    assert 500 not in {r["id"] for r in rows(root)}


# ---- shared state between REST steps running at once ---------------------------------------


def test_in_file_order_of_two_steps_at_once_keeps_the_setting() -> None:
    """preserve_insertion_order is one setting of the database, shared by the run's worker
    cursors: one step restoring it must not switch it off under the other still staging."""
    duckdb = pytest.importorskip("duckdb")
    from lockgate.sources.rest import in_file_order

    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = false")
    a, b = con.cursor(), con.cursor()

    def setting(c: Any) -> bool:
        return bool(c.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0])

    ca, cb = in_file_order(a), in_file_order(b)
    ca.__enter__()
    cb.__enter__()
    ca.__exit__(None, None, None)
    assert setting(b)  # b still stages: order kept
    cb.__exit__(None, None, None)
    assert not setting(con)  # both done: the session's setting back


def test_two_rest_steps_at_once_keep_their_own_records(tmp_path: Path, server: Server) -> None:
    """max_workers 2: two REST reads prefetching and staging chunks at the same time share
    no state (their spill, pages, keys and the later-page-wins order stay their own)."""
    for name in ("a", "b"):
        serve(
            server,
            [[{"id": i, "v": f"{name}{p}"} for i in range(PER_PAGE)] for p in range(1, 6)],
            path=f"/{name}",
        )

    def ds(name: str) -> dict[str, Any]:
        src = {
            "type": "rest",
            "base_url": server.url,
            "path": f"/{name}",
            "paginator": {"type": "page_number"},
            "primary_key": ["id"],
        }
        return {"name": name, "source": src}

    root = make_project(tmp_path / "p", [ds("a"), ds("b")])
    result = lockgate.run(root, max_workers=2)
    assert result.ok, result
    for name in ("a", "b"):
        step = next(s for s in result.steps if s.dataset == name)
        assert step.rows_in == 5 * PER_PAGE and step.rows_skipped == 4 * PER_PAGE
        assert {r["v"] for r in lockgate.read(root, name).to_pylist()} == {f"{name}5"}
    assert no_rest_threads()


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_an_error_while_writing_the_spill_stops_the_fetch_thread(
    tmp_path: Path, server: Server, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    """The spill writer fails (disk full, Ctrl-C) with pages still prefetched: the fetch
    thread is stopped and joined at once, not when the traceback is freed."""
    serve(server, [page(p) for p in range(8)])
    real = _rest_spill.encode_exact
    calls: list[int] = []

    def encode(records: list[Any]) -> bytes | None:
        calls.append(1)
        if len(calls) == 3:
            raise error
        return real(records)

    monkeypatch.setattr(_rest_spill, "encode_exact", encode)
    root = project(tmp_path / "p", server)
    caught: list[BaseException] = []
    try:
        step = run(root)
        assert step.status == "failed"
    except KeyboardInterrupt as e:
        caught.append(e)  # kept alive, with its traceback (frames, generators)
    assert no_rest_threads()
    assert not (root / "warehouse" / "items" / "_delta_log").exists()
    assert bool(caught) == isinstance(error, KeyboardInterrupt)


@pytest.mark.slow
def test_a_step_timeout_stops_a_read_waiting_on_a_page(tmp_path: Path, server: Server) -> None:
    """``timeout:`` interrupts the step's query; a REST read waits on HTTP in the fetch
    thread, not on a query: the timeout must stop it too, not wait for the server."""
    release, answered = threading.Event(), threading.Event()

    def slow(r: Request) -> Reply:
        if int(r.query["page"]) >= 2:
            release.wait(20)
            answered.set()
            return 200, {}, b"[]"
        return 200, {}, json.dumps(page(0)).encode()

    server.route("/slow", slow)
    root = project(tmp_path / "p", server, path="/slow", timeout=1, source={"timeout": 60})
    try:
        step = run(root)
        assert step.status == "failed" and "timed out" in (step.error or ""), step.error
        assert not answered.is_set()  # stopped while the page was still in flight
    finally:
        release.set()
    for t in threading.enumerate():
        if t.name.startswith("lockgate-rest"):
            t.join(30)
    assert no_rest_threads()
    assert not (root / "warehouse" / "items" / "_delta_log").exists()
