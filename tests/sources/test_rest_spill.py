"""The chunked REST spill (lockgate/sources/_rest_spill.py): chunks staged in a background
thread while pages are written keep the records' order and every record; a later chunk
that does not fit (a value that does not parse as its column's type, a record that is not
an object, NaN, a key the first chunk did not have) stops the background staging and the
whole spill goes the old way, with nothing lost. A later value that converts to the first
chunk's type is read as a read of the whole spill would read it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lockgate.sources._rest_http import Page
from lockgate.sources._rest_spill import ChunkedSpill
from lockgate.sources.rest import in_file_order

duckdb = pytest.importorskip("duckdb")


def _pages(n_pages: int, per_page: int, exact: bool = True) -> list[Page]:
    return [
        Page(
            p + 1,
            f"http://h/x?page={p + 1}",
            [{"id": p * per_page + i, "v": f"x{i}", "tags": [i]} for i in range(per_page)],
            exact,
        )
        for p in range(n_pages)
    ]


def _spill(
    tmp: Path, pages: list[Page], chunk_bytes: int = 2_000, sample: int = 50
) -> tuple[Any, bool, Any]:
    con = duckdb.connect(str(tmp / "w.duckdb"))
    con.execute("SET preserve_insertion_order = false")  # as the run's work session
    con.execute("ATTACH ':memory:' AS lg_w1")
    con.execute("USE lg_w1")  # a worker's own work database, as the run loop's cursors
    with in_file_order(con), ChunkedSpill(con, "t", tmp, None, chunk_bytes, sample=sample) as spill:
        spill.write(iter(pages))
        staged = spill.finish()
        if not staged:
            spill.joined()
    return con, staged, spill


def test_chunks_staged_in_the_background_keep_order_and_types(tmp_path: Path) -> None:
    con, staged, spill = _spill(tmp_path, _pages(40, 50))
    assert staged and len(spill.files) > 5 and spill.lines == 2000
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM lg_w1.t").fetchone() == (
        2000,
        2000,
    )
    (out_of_order,) = con.execute(
        "SELECT count(*) FROM (SELECT id, row_number() OVER () - 1 AS n FROM lg_w1.t) WHERE id <> n"
    ).fetchone()
    assert out_of_order == 0
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE lg_w1.t)").fetchall())
    assert types == {"id": "BIGINT", "v": "VARCHAR", "tags": "JSON"}
    assert spill.index[:2] == [(1, 1, "http://h/x?page=1"), (51, 2, "http://h/x?page=2")]


@pytest.mark.parametrize(
    "late",
    [
        {"id": "x1999", "v": "x", "tags": [1]},  # id does not parse as the first chunk's BIGINT
        "not an object",
        {"id": 1_999, "v": float("nan"), "tags": []},
        {"id": 1_999, "v": "x", "tags": [], "late": 1},  # a key the first chunk had not
    ],
)
def test_a_later_chunk_that_does_not_fit_falls_back_whole(tmp_path: Path, late: Any) -> None:
    pages = _pages(40, 50)
    exact = not isinstance(late, dict) or late["v"] == late["v"]  # NaN: not exact
    pages[-1] = Page(40, pages[-1].url, [*pages[-1].records[:-1], late], exact)
    con, staged, spill = _spill(tmp_path, pages)
    assert not staged and spill.lines == 2000
    assert (
        con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 't'").fetchone()[0]
        == 0
    )
    joined = spill.files[0].read_text().splitlines()
    assert (
        len(joined) == 2000
        and joined[0].startswith('{"id":0,')
        and joined[-2].startswith('{"id":1998,')
    )


def test_a_later_value_of_another_type_is_read_as_a_whole_read_would(tmp_path: Path) -> None:
    """``v`` is text in the first chunk, a number in the last: read as the text "5", the
    type DuckDB detects from the same first records of the whole spill."""
    pages = _pages(40, 50)
    pages[-1] = Page(40, pages[-1].url, [*pages[-1].records[:-1], {"id": 1_999, "v": 5}], True)
    con, staged, _ = _spill(tmp_path, pages)
    assert staged
    assert con.execute("SELECT v, tags FROM lg_w1.t WHERE id = 1999").fetchone() == ("5", None)
    from lockgate.sources._rest_spill import fast_read

    whole = tmp_path / "whole.ndjson"
    whole.write_text("".join(json.dumps(r) + "\n" for p in pages for r in p.records))
    assert fast_read(con, "w", whole, None, sample=50)
    assert (
        con.execute("SELECT * FROM lg_w1.t").fetchall()
        == con.execute("SELECT * FROM lg_w1.w").fetchall()
    )


def test_prefetched_keeps_order_raises_the_producers_error_and_stops_it() -> None:
    from lockgate.sources._rest_spill import prefetched

    assert list(prefetched(iter(range(100)), depth=2)) == list(range(100))
    closed: list[bool] = []

    def pages() -> Any:
        try:
            yield 1
            yield 2
            raise ValueError("page 3 is not JSON")
        finally:
            closed.append(True)

    got: list[int] = []
    with pytest.raises(ValueError, match="page 3"):
        for x in prefetched(pages(), depth=2):
            got.append(x)
    assert got == [1, 2] and closed == [True]

    def endless() -> Any:
        n = 0
        try:
            while True:
                n += 1
                yield n
        finally:
            closed.append(True)

    gen = prefetched(endless(), depth=2)
    assert [next(gen), next(gen)] == [1, 2]
    gen.close()  # the consumer stops early (an error while writing): the producer stops
    assert closed == [True, True]


@pytest.mark.parametrize("later_chunk", [False, True])
def test_a_column_null_in_the_whole_sample_keeps_its_later_values(
    tmp_path: Path, later_chunk: bool
) -> None:
    """DuckDB types a column null in every sampled record ``"NULL"`` and then reads every
    later value as NULL: such a column is read as text instead (later values in the first
    chunk beyond the sample, or in a later chunk)."""
    nulls = [{"id": i, "v": None} for i in range(200)]
    late = [{"id": 200, "v": "late"}, {"id": 201, "v": 7}]
    if later_chunk:
        pages = [Page(1, "http://h/x?page=1", nulls), Page(2, "http://h/x?page=2", late)]
    else:
        pages = [Page(1, "http://h/x?page=1", nulls + late)]
    con, staged, _ = _spill(tmp_path, pages, sample=50)
    assert staged
    rows = con.execute("SELECT id, v FROM lg_w1.t WHERE v IS NOT NULL ORDER BY id").fetchall()
    assert rows == [(200, "late"), (201, "7")]
