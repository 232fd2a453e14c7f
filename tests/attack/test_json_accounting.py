"""JSON / NDJSON sources: nested values of good records survive a bad line, odd top-level
values are quarantined (never published as a catch-all column), nothing vanishes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lockgate.runloop.results import StepStatus
from tests.attack._util import (
    assert_invariant,
    build,
    norm,
    published,
    quarantined,
    reasons_of,
    run,
)


def _src(path: str, columns: dict[str, str] | None = None, fmt: str | None = None) -> dict:
    source: dict[str, Any] = {"type": "file", "path": path}
    if columns:
        source["columns"] = columns
    if fmt:
        source["format"] = fmt
    return {"name": "j", "source": source}


def _by(rows: list[dict[str, Any]], key: str) -> dict[Any, dict[str, Any]]:
    return {r[key]: r for r in rows}


GOOD_NESTED = [
    {"k": "a", "payload": {"n": {"deep": [1, 2]}, "s": "é"}, "items": [{"x": 1}, {"x": 2}]},
    {"k": "b", "payload": {"n": {"deep": []}, "s": "ü"}, "items": [{"x": 3}]},
    {"k": "c", "payload": {"n": {"deep": [9]}, "s": ""}, "items": []},
]


@pytest.mark.parametrize("broken", ['{"k": "z", "payload": {', "not json at all", '{"k":}'])
def test_ndjson_nested_values_survive_a_broken_line(tmp_path: Path, broken: str) -> None:
    lines = [
        json.dumps(GOOD_NESTED[0]),
        broken,
        json.dumps(GOOD_NESTED[1]),
        json.dumps(GOOD_NESTED[2]),
    ]
    root = build(
        tmp_path / "p", [_src("data/e.ndjson")], {"data/e.ndjson": "\n".join(lines) + "\n"}
    )
    step = run(root).step("j")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    rows = _by(published(root, "j"), "k")
    assert sorted(rows) == ["a", "b", "c"], f"good records lost: {sorted(rows)}"
    for want in GOOD_NESTED:
        got = rows[want["k"]]
        for col in ("payload", "items"):
            assert norm(got[col]) == want[col], (
                f"nested column '{col}' of good record {want['k']} published as {got[col]!r}, "
                f"expected {want[col]!r}"
            )
    q = quarantined(root, "j")
    assert len(q) == 1 and q[0].get("_lg_line") == 2, f"the broken line 2 must be quarantined: {q}"
    assert_invariant(step, rows_in=4)


def _deep(n: int) -> Any:
    v: Any = "bottom"
    for _ in range(n):
        v = {"d": v}
    return v


@pytest.mark.parametrize("depth", [130, 300])
def test_ndjson_line_nested_deeper_than_128_is_not_lost(tmp_path: Path, depth: int) -> None:
    lines = [
        json.dumps({"id": 1, "tree": {"leaf": 1}}),
        json.dumps({"id": 2, "tree": _deep(depth)}),
        json.dumps({"id": 3, "tree": {"leaf": 3}}),
    ]
    root = build(tmp_path / "p", [_src("data/e.jsonl")], {"data/e.jsonl": "\n".join(lines) + "\n"})
    step = run(root).step("j")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    rows = _by(published(root, "j"), "id")
    assert norm(rows.get(1, {}).get("tree")) == {"leaf": 1}, (
        f"good nested row 1 altered: {rows.get(1)}"
    )
    assert norm(rows.get(3, {}).get("tree")) == {"leaf": 3}, (
        f"good nested row 3 altered: {rows.get(3)}"
    )
    q = quarantined(root, "j")
    if 2 in rows:
        assert norm(rows[2]["tree"]) == _deep(depth), "the deep record was published altered"
    else:
        assert len(q) == 1 and reasons_of(q)[0], f"the deep record must be quarantined: {q}"
    assert_invariant(step, rows_in=3)


def test_ndjson_mixed_types_across_lines_keep_every_value(tmp_path: Path) -> None:
    values = [7, "seven", {"n": 7}, [7, "x"], True, None, 7.5]
    lines = [json.dumps({"id": i, "v": v}) for i, v in enumerate(values)]
    root = build(
        tmp_path / "p", [_src("data/m.ndjson")], {"data/m.ndjson": "\n".join(lines) + "\n"}
    )
    step = run(root).step("j")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    rows = _by(published(root, "j"), "id")
    q = quarantined(root, "j")
    assert len(rows) + len(q) == len(values), f"records vanished: {rows} / {q}"
    for i, v in enumerate(values):
        if i in rows:
            got = rows[i]["v"]
            assert norm(got) == v or (isinstance(got, str) and got == str(v)), (
                f"id {i}: value {v!r} published as {got!r}"
            )
    assert_invariant(step, rows_in=len(values))


def test_ndjson_broken_and_blank_lines(tmp_path: Path) -> None:
    text = '{"id": 1, "t": "a"}\n\n{"id": 2, "t": \n   \n{"id": 3, "t": "c"}\n\n'
    root = build(tmp_path / "p", [_src("data/b.ndjson")], {"data/b.ndjson": text})
    step = run(root).step("j")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    assert sorted((r["id"], r["t"]) for r in published(root, "j")) == [(1, "a"), (3, "c")]
    q = quarantined(root, "j")
    assert [r.get("_lg_line") for r in q] == [3], f"only the broken line 3 is a bad record: {q}"
    assert "blank" not in " ".join(reasons_of(q)), "blank lines are not records"
    good_and_bad = step.rows_out + step.rows_quarantined
    assert good_and_bad == 3, f"3 records (2 good, 1 broken): {step.to_dict()}"
    assert_invariant(step)


@pytest.mark.parametrize(
    "odd",
    ["5", "[1, 2]", '"text"', "null", "[]", "true"],
    ids=["number", "array", "string", "null", "empty_array", "boolean"],
)
def test_ndjson_top_level_non_object_is_quarantined(tmp_path: Path, odd: str) -> None:
    text = '{"id": 1, "name": "x"}\n' + odd + '\n{"id": 2, "name": "y"}\n'
    root = build(tmp_path / "p", [_src("data/s.ndjson")], {"data/s.ndjson": text})
    step = run(root).step("j")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    rows = published(root, "j")
    assert sorted((r.get("id") for r in rows), key=str) == [1, 2], (
        f"the top-level {odd!r} must not be published (nor collapse the table): {rows}"
    )
    assert set(rows[0]) >= {"id", "name"}, f"columns lost: {list(rows[0])}"
    q = quarantined(root, "j")
    assert len(q) == 1 and reasons_of(q)[0], f"{odd!r} on line 2 must be quarantined: {q}"
    assert_invariant(step, rows_in=3)


@pytest.mark.parametrize(
    "doc,good_ids,n_bad",
    [
        ('[{"id": 1, "n": "a"}, "oops", {"id": 2, "n": "b"}]', [1, 2], 1),
        ('[{"id": 1, "n": "a"}, 42, 4.5, {"id": 2, "n": "b"}]', [1, 2], 2),
        ('[[{"id": 1, "n": "a"}], {"id": 2, "n": "b"}]', [2], 1),
        ('[{"id": 1, "n": "a"}, null, {"id": 2, "n": "b"}]', [1, 2], 1),
    ],
    ids=["string_element", "number_elements", "nested_array", "null_element"],
)
def test_json_array_with_non_object_elements(
    tmp_path: Path, doc: str, good_ids: list[int], n_bad: int
) -> None:
    root = build(tmp_path / "p", [_src("data/a.json")], {"data/a.json": doc})
    step = run(root).step("j")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    rows = published(root, "j")
    assert sorted((r.get("id") for r in rows), key=str) == good_ids, (
        f"non-object elements must not be published: {rows}"
    )
    assert {r.get("n") for r in rows} == {"a", "b"} - ({"a"} if 1 not in good_ids else set())
    q = quarantined(root, "j")
    assert len(q) == n_bad and all(reasons_of(q)), f"expected {n_bad} quarantined: {q}"
    assert_invariant(step, rows_in=len(good_ids) + n_bad)


def test_json_empty_array_is_an_empty_batch(tmp_path: Path) -> None:
    root = build(
        tmp_path / "p", [_src("data/a.json", columns={"id": "BIGINT"})], {"data/a.json": "[]"}
    )
    step = run(root).step("j")
    assert step.status == StepStatus.SUCCESS, (
        f"an empty JSON array is a valid empty batch: {step.reason[:300]}"
    )
    assert published(root, "j") == []
    assert_invariant(step, rows_in=0)


def test_json_empty_string_key_is_a_clear_outcome(tmp_path: Path) -> None:
    doc = '[{"id": 1, "": "anon"}, {"id": 2, "": "mous"}]'
    root = build(tmp_path / "p", [_src("data/a.json")], {"data/a.json": doc})
    step = run(root).step("j")
    assert "unexpected" not in step.reason.lower(), (
        f"an empty key must be quarantined or a clear error, not a crash: {step.reason[:300]}"
    )
    if step.status == StepStatus.SUCCESS:
        rows, q = published(root, "j"), quarantined(root, "j")
        assert len(rows) + len(q) == 2, f"records vanished: {rows} {q}"
        assert_invariant(step, rows_in=2)
    else:
        assert "key" in step.reason.lower() or "column" in step.reason.lower(), step.reason


def test_declared_json_column_keeps_values_and_quarantines_bad_id(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": 1, "meta": {"tags": ["x", "y"], "n": 1}}),
        json.dumps({"id": "one", "meta": {"n": 2}}),
        json.dumps({"id": 3, "meta": [1, {"z": None}]}),
        json.dumps({"id": 4, "meta": "plain"}),
    ]
    root = build(
        tmp_path / "p",
        [_src("data/d.ndjson", columns={"id": "BIGINT", "meta": "JSON"})],
        {"data/d.ndjson": "\n".join(lines) + "\n"},
    )
    step = run(root).step("j")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    rows = _by(published(root, "j"), "id")
    assert sorted(rows) == [1, 3, 4], f"'one' is not a BIGINT; the others are good: {sorted(rows)}"
    assert norm(rows[1]["meta"]) == {"tags": ["x", "y"], "n": 1}, rows[1]
    assert norm(rows[3]["meta"]) == [1, {"z": None}], rows[3]
    assert norm(rows[4]["meta"]) == "plain", rows[4]
    q = quarantined(root, "j")
    assert len(q) == 1 and q[0].get("_lg_line") == 2, f"line 2 must be quarantined: {q}"
    assert_invariant(step, rows_in=4)
