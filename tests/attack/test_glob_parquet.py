"""Globs of several files whose columns differ (order, missing, extra) and Parquet files
whose types differ: declared types are applied per file, bad values are quarantined, no
column or row is silently dropped."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lockgate.runloop.results import StepStatus
from lockgate.storage import DeltaStore
from tests.attack._util import (
    assert_invariant,
    build,
    norm,
    published,
    quarantined,
    reasons_of,
    run,
)


def _src(path: str, columns: dict[str, str] | None = None, **options: Any) -> dict[str, Any]:
    source: dict[str, Any] = {"type": "file", "path": path}
    if columns:
        source["columns"] = columns
    if options:
        source["options"] = options
    return {"name": "g", "source": source}


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


DECL = {"id": "BIGINT", "price": "DECIMAL(12,2)"}


@pytest.mark.parametrize(
    "files",
    [
        {  # same columns, different orders
            "data/p1.csv": "id,label,price\n1,one,1.10\n2,two,2.20\n",
            "data/p2.csv": "price,id,label\n3.30,3,three\n4.40,4,four\n",
            "data/p3.csv": "label,price,id\nfive,5.50,5\n",
        },
        {  # reordered, and the second file has a bad id
            "data/p1.csv": "id,label,price\n1,one,1.10\n2,two,2.20\n",
            "data/p2.csv": "label,price,id\nthree,3.30,3\nbad,9.99,NaN-ish\nfour,4.40,4\n",
            "data/p3.csv": "price,label,id\n5.50,five,5\n",
        },
    ],
    ids=["reordered", "reordered_with_bad_id"],
)
def test_csv_glob_reordered_headers_use_declared_types(
    tmp_path: Path, files: dict[str, str]
) -> None:
    root = build(tmp_path / "p", [_src("data/p*.csv", DECL)], files)
    step = run(root).step("g")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    table = DeltaStore(root / "warehouse").read("g")
    types = {f.name: f.type for f in table.schema}
    assert pa.types.is_int64(types["id"]), f"declared id: BIGINT ignored: {types}"
    assert types["price"] == pa.decimal128(12, 2), f"declared DECIMAL(12,2) ignored: {types}"
    rows = {r["id"]: (r["label"], r["price"]) for r in table.to_pylist()}
    names = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
    want = {
        i: (n, Decimal(str(round(i * 1.1, 2))).quantize(Decimal("0.01"))) for i, n in names.items()
    }
    assert rows == want, f"values misaligned across files with different header orders: {rows}"
    q = quarantined(root, "g")
    n_bad = sum(text.count("NaN-ish") for text in files.values())
    assert len(q) == n_bad, f"the non-numeric id must be quarantined, not published: {q}"
    assert all(reasons_of(q))
    assert_invariant(step, rows_in=5 + n_bad)


def test_csv_glob_extra_column_in_later_file_is_not_dropped(tmp_path: Path) -> None:
    files = {
        "data/a.csv": "id,city\n1,Oslo\n2,Rome\n",
        "data/b.csv": "city,id,zip\nLima,3,15001\n",
    }
    root = build(tmp_path / "p", [_src("data/*.csv", {"id": "BIGINT"})], files)
    step = run(root).step("g")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    rows = {r["id"]: r for r in published(root, "g")}
    assert sorted(rows) == [1, 2, 3], f"rows lost: {rows}"
    assert rows[3]["city"] == "Lima", f"values misaligned: {rows[3]}"
    assert "zip" in rows[3], (
        f"column 'zip' present only in a later file was silently dropped: {rows[3]}"
    )
    assert str(rows[3]["zip"]) == "15001" and rows[1]["zip"] is None, rows
    assert_invariant(step, rows_in=3)


def test_csv_glob_missing_column_in_one_file(tmp_path: Path) -> None:
    files = {
        "data/a.csv": "id,city,score\n1,Oslo,10\n",
        "data/b.csv": "id,city\n2,Rome\n",
    }
    root = build(tmp_path / "p", [_src("data/*.csv", {"id": "BIGINT", "score": "INTEGER"})], files)
    step = run(root).step("g")
    rows = {r["id"]: r for r in published(root, "g")}
    q = quarantined(root, "g")
    # the row of b.csv is either published with score NULL or quarantined with a reason
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    assert rows.get(1, {}).get("score") == 10 and rows[1]["city"] == "Oslo", rows
    if 2 in rows:
        assert rows[2]["city"] == "Rome" and rows[2]["score"] is None, rows[2]
    else:
        assert len(q) == 1 and reasons_of(q)[0], f"row 2 vanished: {rows} {q}"
    assert_invariant(step, rows_in=2)


def test_parquet_glob_with_differing_types_casts_per_row(tmp_path: Path) -> None:
    f1 = pa.table({"id": pa.array([1, 2], pa.int64()), "qty": pa.array([10, 20], pa.int64())})
    f2 = pa.table({"id": pa.array(["3", "four", "5"]), "qty": pa.array(["30", "40", "x"])})
    files: dict[str, str | bytes] = {"data/a.parquet": _parquet(f1), "data/b.parquet": _parquet(f2)}
    root = build(tmp_path / "p", [_src("data/*.parquet", {"id": "BIGINT", "qty": "BIGINT"})], files)
    step = run(root).step("g")
    assert step.status == StepStatus.SUCCESS, (
        f"differing Parquet types must be cast per row, not fail the dataset: {step.reason[:300]}"
    )
    rows = sorted((r["id"], r["qty"]) for r in published(root, "g"))
    assert rows == [(1, 10), (2, 20), (3, 30)], rows
    q = quarantined(root, "g")
    assert len(q) == 2 and all(reasons_of(q)), f"'four' and 'x' must be quarantined: {q}"
    assert_invariant(step, rows_in=5)


def test_parquet_glob_undeclared_differing_types_does_not_fail_or_lose(tmp_path: Path) -> None:
    f1 = pa.table({"id": pa.array([1, 2], pa.int32()), "v": pa.array([1.5, None])})
    f2 = pa.table({"id": pa.array([3], pa.int64()), "v": pa.array([2.5]), "w": pa.array(["new"])})
    files: dict[str, str | bytes] = {"data/a.parquet": _parquet(f1), "data/b.parquet": _parquet(f2)}
    root = build(tmp_path / "p", [_src("data/*.parquet")], files)
    step = run(root).step("g")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    rows = {r["id"]: r for r in published(root, "g")}
    assert sorted(rows) == [1, 2, 3], rows
    assert rows[2]["v"] is None and rows[3]["v"] == 2.5
    assert rows[3].get("w") == "new", f"column 'w' of the second file was dropped: {rows[3]}"
    assert_invariant(step, rows_in=3)


def test_parquet_nested_types_and_nulls_published_unchanged(tmp_path: Path) -> None:
    t = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "tags": pa.array([["a", "b"], None, []], pa.list_(pa.string())),
            "geo": pa.array(
                [{"lat": 1.5, "lon": -2.0}, None, {"lat": None, "lon": 0.0}],
                pa.struct([("lat", pa.float64()), ("lon", pa.float64())]),
            ),
            "m": pa.array([[("k", 1)], None, []], pa.map_(pa.string(), pa.int64())),
        }
    )
    root = build(tmp_path / "p", [_src("data/n.parquet")], {"data/n.parquet": _parquet(t)})
    step = run(root).step("g")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    rows = {r["id"]: r for r in published(root, "g")}
    assert rows[1]["tags"] == ["a", "b"] and rows[2]["tags"] is None and rows[3]["tags"] == []
    assert norm(rows[1]["geo"]) == {"lat": 1.5, "lon": -2.0} and rows[2]["geo"] is None
    assert norm(rows[3]["geo"]) == {"lat": None, "lon": 0.0}
    m1 = rows[1]["m"]
    assert (dict(m1) if isinstance(m1, list) else norm(m1)) == {"k": 1}, m1
    assert_invariant(step, rows_in=3)
