"""CSV sources of many shapes: every record is published unchanged, quarantined with a
reason, or skipped under a named reason — and the step's numbers say so."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lockgate.runloop.results import StepStatus
from lockgate.storage import DeltaStore
from tests.attack._util import (
    assert_invariant,
    build,
    published,
    quarantined,
    reasons_of,
    run,
)


def _src(path: str, options: dict[str, Any] | None = None, columns: dict[str, str] | None = None):
    source: dict[str, Any] = {"type": "file", "path": path}
    if options:
        source["options"] = options
    if columns:
        source["columns"] = columns
    return {"name": "t", "source": source}


# (id, file bytes, options, declared columns, good rows (exact), n quarantined, n records)
CASES: list[
    tuple[str, bytes, dict[str, Any], dict[str, str] | None, list[dict[str, Any]], int, int]
] = [
    (
        "quoted_newline",
        b'k,txt\n"a","line one\nline two"\n"b","x, ""quoted"""\n',
        {},
        {"k": "VARCHAR", "txt": "VARCHAR"},
        [{"k": "a", "txt": "line one\nline two"}, {"k": "b", "txt": 'x, "quoted"'}],
        0,
        2,
    ),
    (
        "utf8_bom",
        "\ufeffsku,qty\nA-1,3\nB-2,4\n".encode(),
        {},
        {"sku": "VARCHAR", "qty": "BIGINT"},
        [{"sku": "A-1", "qty": 3}, {"sku": "B-2", "qty": 4}],
        0,
        2,
    ),
    (
        "crlf",
        b"sku,label\r\nA,first\r\nB,second\r\n",
        {},
        None,
        [{"sku": "A", "label": "first"}, {"sku": "B", "label": "second"}],
        0,
        2,
    ),
    (
        "semicolon_option",
        b"sku;label;qty\nA;x,y;1\nB;z;2\n",
        {"delimiter": ";"},
        {"qty": "INTEGER"},
        [{"sku": "A", "label": "x,y", "qty": 1}, {"sku": "B", "label": "z", "qty": 2}],
        0,
        2,
    ),
    (
        "header_only",
        b"sku,qty\n",
        {},
        {"sku": "VARCHAR", "qty": "BIGINT"},
        [],
        0,
        0,
    ),
    (
        "trailing_blank_lines",
        b"sku,qty\nA,1\nB,2\n\n\n\n",
        {},
        {"sku": "VARCHAR", "qty": "BIGINT"},
        [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}],
        0,
        2,
    ),
    (
        "ragged_lines",
        b"sku,qty,note\nA,1,ok\nB,2\nC,3,x,extra\nD,4,fine\n",
        {},
        None,
        [{"sku": "A", "qty": 1, "note": "ok"}, {"sku": "D", "qty": 4, "note": "fine"}],
        2,
        4,
    ),
    (
        "unicode",
        "prénom,ville,💰\nZoë,Zürich,١٢\n李,東京,🚀\n".encode(),
        {},
        None,
        [
            {"prénom": "Zoë", "ville": "Zürich", "💰": "١٢"},
            {"prénom": "李", "ville": "東京", "💰": "🚀"},
        ],
        0,
        2,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_csv_shapes_publish_every_good_row_exactly(tmp_path: Path, case: tuple) -> None:
    _, data, options, columns, good, n_bad, n_records = case
    root = build(tmp_path / "p", [_src("data/in.csv", options, columns)], {"data/in.csv": data})
    res = run(root)
    step = res.step("t")
    assert step.status == StepStatus.SUCCESS, f"step failed on a valid CSV: {step.reason[:300]}"
    rows = published(root, "t")
    got = [{k: r.get(k) for k in good[0]} for r in rows] if good else rows
    assert sorted(got, key=repr) == sorted(good, key=repr), (
        f"published rows differ from the good records of the file: {rows}"
    )
    q = quarantined(root, "t")
    assert len(q) == n_bad, f"expected {n_bad} quarantined record(s), got {q}"
    assert all(reasons_of(q)), f"a quarantined record has no reason: {q}"
    assert_invariant(step, rows_in=n_records)


def test_ragged_lines_quarantined_with_their_true_line_numbers(tmp_path: Path) -> None:
    data = b"sku,qty,note\nA,1,ok\nB,2\nC,3,x,extra\nD,4,fine\n"
    root = build(tmp_path / "p", [_src("data/in.csv")], {"data/in.csv": data})
    run(root)
    q = quarantined(root, "t")
    lines = sorted(r.get("_lg_line") for r in q)
    assert lines == [3, 4], f"ragged records are on physical lines 3 and 4 (header = 1): {q}"


def test_empty_file_in_a_glob_is_accounted_and_others_publish(tmp_path: Path) -> None:
    root = build(
        tmp_path / "p",
        [_src("data/*.csv", columns={"sku": "VARCHAR", "qty": "BIGINT"})],
        {"data/a.csv": b"sku,qty\nA,1\n", "data/b.csv": b"", "data/c.csv": b"sku,qty\nC,3\n"},
    )
    res = run(root)
    step = res.step("t")
    assert step.status == StepStatus.SUCCESS, step.reason
    assert sorted(r["sku"] for r in published(root, "t")) == ["A", "C"]
    assert_invariant(step)


DECLARED = {
    "id": "BIGINT",
    "price": "DECIMAL(12,2)",
    "day": "DATE",
    "at": "TIMESTAMP",
    "flag": "BOOLEAN",
}
GOOD_LINE = "7,19.99,2024-02-29,2024-02-29 23:59:58,true"
BAD_LINES = {
    "bigint": "x7,1.00,2024-01-01,2024-01-01 00:00:00,false",
    "decimal": "8,12..5,2024-01-01,2024-01-01 00:00:00,false",
    "decimal_overflow": "9,12345678901234.5,2024-01-01,2024-01-01 00:00:00,false",
    "date": "10,1.00,2024-02-30,2024-01-01 00:00:00,false",
    "timestamp": "11,1.00,2024-01-01,yesterday noon,false",
    "boolean": "12,1.00,2024-01-01,2024-01-01 00:00:00,maybe",
}


@pytest.mark.parametrize("bad", sorted(BAD_LINES))
def test_declared_types_quarantine_unconvertible_values(tmp_path: Path, bad: str) -> None:
    text = (
        "id,price,day,at,flag\n"
        + GOOD_LINE
        + "\n"
        + BAD_LINES[bad]
        + "\n"
        + "13,0.5,2023-12-31,2023-12-31 01:02:03,false\n"
    )
    root = build(tmp_path / "p", [_src("data/in.csv", columns=DECLARED)], {"data/in.csv": text})
    res = run(root)
    step = res.step("t")
    assert step.status == StepStatus.SUCCESS, step.reason
    table = DeltaStore(root / "warehouse").read("t")
    types = {f.name: f.type for f in table.schema}
    assert pa.types.is_int64(types["id"]), types
    assert types["price"] == pa.decimal128(12, 2), types
    assert pa.types.is_date32(types["day"]), types
    assert pa.types.is_timestamp(types["at"]), types
    assert pa.types.is_boolean(types["flag"]), types
    rows = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == [7, 13], f"bad line '{bad}' must not be published: {rows}"
    assert rows[0]["price"] == Decimal("19.99") and rows[0]["day"] == dt.date(2024, 2, 29)
    assert rows[0]["at"].replace(tzinfo=None) == dt.datetime(2024, 2, 29, 23, 59, 58)
    assert rows[0]["flag"] is True
    q = quarantined(root, "t")
    assert len(q) == 1 and reasons_of(q)[0], (
        f"the '{bad}' line must be quarantined with a reason: {q}"
    )
    assert q[0].get("_lg_line") == 3, f"the bad record is on line 3: {q}"
    assert_invariant(step, rows_in=3)


@pytest.mark.slow  # megabytes of input: left out of make test-fast
@pytest.mark.parametrize("cell_mb", [1.5, 2.5, 6])
def test_huge_cell(tmp_path: Path, cell_mb: float) -> None:
    big = "z" * int(cell_mb * 1024 * 1024)
    text = f"id,blob\n1,small\n2,{big}\n3,tiny\n"
    root = build(
        tmp_path / "p", [_src("data/in.csv", columns={"id": "BIGINT"})], {"data/in.csv": text}
    )
    res = run(root)
    step = res.step("t")
    assert step.status == StepStatus.SUCCESS, (
        f"one {cell_mb} MB cell must not fail the whole dataset: {step.reason[:300]}"
    )
    rows = {r["id"]: r["blob"] for r in published(root, "t")}
    assert rows.get(1) == "small" and rows.get(3) == "tiny", f"good rows lost: {sorted(rows)}"
    q = quarantined(root, "t")
    if 2 in rows:
        assert rows[2] == big, "the big cell was published altered"
    else:
        assert len(q) == 1 and q[0].get("_lg_line") == 3, (
            f"the row with the {cell_mb} MB cell must be quarantined alone with its true line "
            f"number 3: {[{k: str(v)[:80] for k, v in r.items()} for r in q]}"
        )
    state = root / ".lockgate" / "state.db"
    assert state.stat().st_size < 2 * 1024 * 1024, (
        f"the state store grew to {state.stat().st_size} bytes: raw megabytes copied into it"
    )
    assert_invariant(step, rows_in=3)
