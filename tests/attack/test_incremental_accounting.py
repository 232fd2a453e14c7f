"""Incremental sources and transforms, merges and re-runs: late records, NULL cursors,
duplicate keys and re-read rows are published, quarantined or skipped under a name —
never silently gone, never appended twice."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

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
    sql,
    write_files,
)


def _inc(path: str, cursor: str, lookback: Any = None, **extra: Any) -> dict[str, Any]:
    inc: dict[str, Any] = {"cursor": cursor}
    if lookback is not None:
        inc["lookback"] = lookback
    return {"name": "ev", "source": {"type": "file", "path": path}, "incremental": inc, **extra}


LATE_CASES = [
    # (id, lookback, columns, first file, late line, fresh line)
    (
        "timestamp_lookback_1h",
        "1h",
        {"id": "BIGINT", "at": "TIMESTAMP"},
        "id,at\n1,2024-05-01 10:00:00\n2,2024-05-01 12:00:00\n",
        "3,2024-04-30 23:00:00",
        "4,2024-05-01 13:00:00",
    ),
    (
        "date_lookback_1d",
        "1d",
        {"id": "BIGINT", "at": "DATE"},
        "id,at\n1,2024-05-01\n2,2024-05-10\n",
        "3,2024-05-02",
        "4,2024-05-11",
    ),
    (
        "integer_lookback_5",
        5,
        {"id": "BIGINT", "at": "BIGINT"},
        "id,at\n1,100\n2,200\n",
        "3,150",
        "4,201",
    ),
    (
        "integer_no_lookback",
        None,
        {"id": "BIGINT", "at": "BIGINT"},
        "id,at\n1,100\n2,200\n",
        "3,50",
        "4,300",
    ),
]


@pytest.mark.parametrize("case", LATE_CASES, ids=[c[0] for c in LATE_CASES])
def test_late_record_in_new_file_is_quarantined_as_late(tmp_path: Path, case: tuple) -> None:
    _, lookback, columns, first, late, fresh = case
    ds = _inc("data/*.csv", "at", lookback)
    ds["source"]["columns"] = columns
    root = build(tmp_path / "p", [ds], {"data/f1.csv": first})
    assert run(root).step("ev").status == StepStatus.SUCCESS
    write_files(root, {"data/f2.csv": "id,at\n" + late + "\n" + fresh + "\n"})
    step = run(root).step("ev")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    ids = sorted(r["id"] for r in published(root, "ev"))
    assert 4 in ids and ids.count(4) == 1, f"the fresh record must be published once: {ids}"
    q = quarantined(root, "ev")
    late_q = [r for r in q if r.get("id") == 3 or "3," in str(r.get("_lg_raw_record"))]
    assert 3 in ids or late_q, (
        f"record older than watermark - lookback vanished: not published ({ids}) and not in "
        f"quarantine ({q}); step {step.to_dict()['rows_in']} rows in"
    )
    assert 3 not in ids, (
        "by default a late record is quarantined, not appended behind the watermark"
    )
    assert "late" in reasons_of(late_q)[0].lower(), f"quarantine reason should say 'late': {late_q}"
    assert_invariant(step, rows_in=2)


def test_record_at_exact_watermark_in_new_file_is_not_dropped(tmp_path: Path) -> None:
    ds = _inc("data/*.csv", "at")
    ds["source"]["columns"] = {"id": "BIGINT", "at": "BIGINT"}
    root = build(tmp_path / "p", [ds], {"data/f1.csv": "id,at\n1,100\n2,200\n"})
    run(root)
    write_files(root, {"data/f2.csv": "id,at\n3,200\n4,201\n"})  # id 3 is new, same cursor value
    step = run(root).step("ev")
    ids = sorted(r["id"] for r in published(root, "ev"))
    q = quarantined(root, "ev")
    assert 3 in ids or any(r.get("id") == 3 for r in q), (
        f"a NEW record whose cursor equals the watermark vanished: published {ids}, quarantine {q}"
    )
    assert_invariant(step, rows_in=2)


def test_rows_with_null_cursor_in_incremental_transform_are_not_lost(tmp_path: Path) -> None:
    src = _inc("data/*.csv", "seq")
    src["name"] = "raw"
    src["source"]["columns"] = {"seq": "BIGINT", "id": "BIGINT", "ts": "TIMESTAMP"}
    clean = sql("clean", "select id, ts from raw", incremental={"cursor": "ts"})
    root = build(
        tmp_path / "p",
        [src, clean],
        {"data/a.csv": "seq,id,ts\n1,1,2024-01-01 00:00:00\n2,2,2024-01-02 00:00:00\n"},
    )
    assert run(root).ok
    write_files(root, {"data/b.csv": "seq,id,ts\n3,3,\n4,4,2024-01-03 00:00:00\n5,5,\n"})
    res = run(root)
    assert res.step("raw").status == StepStatus.SUCCESS, res.step("raw").reason
    step = res.step("clean")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    upstream = sorted(r["id"] for r in published(root, "raw"))
    assert upstream == [1, 2, 3, 4, 5]
    got = [r["id"] for r in published(root, "clean")] + [
        r.get("id") for r in quarantined(root, "clean")
    ]
    missing = sorted(set(upstream) - set(got))
    assert not missing, (
        f"rows {missing} with a NULL cursor are in the upstream table but in neither 'clean' "
        "nor its quarantine"
    )
    # the boundary row (cursor == watermark, read again by the >= filter) may be re-read:
    # then it is a named skip, never a second copy
    assert_invariant(step)
    assert set(step.skip_reasons) <= {"already_published"}, step.skip_reasons
    assert step.rows_in - step.rows_skipped == 3


@pytest.mark.parametrize("order_by", [None, "v"])
def test_duplicate_keys_in_merge_batch_are_counted(tmp_path: Path, order_by: str | None) -> None:
    write: dict[str, Any] = {"mode": "merge", "keys": ["k1", "k2"]}
    if order_by:
        write["order_by"] = order_by
    ds = {"name": "m", "source": {"type": "file", "path": "data/m.csv"}, "write": write}
    text = "k1,k2,v\na,1,10\na,1,30\nb,1,5\na,2,7\nb,1,6\nb,1,4\n"
    root = build(tmp_path / "p", [ds], {"data/m.csv": text})
    step = run(root).step("m")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    rows = {(r["k1"], r["k2"]): r["v"] for r in published(root, "m")}
    assert set(rows) == {("a", 1), ("b", 1), ("a", 2)}
    if order_by:
        assert rows == {("a", 1): 30, ("b", 1): 6, ("a", 2): 7}, rows
    assert_invariant(step, rows_in=6)
    skipped = getattr(step, "skip_reasons", {}) or {}
    assert step.rows_quarantined + sum(skipped.values()) == 3, (
        f"3 superseded duplicates must be quarantined or skipped under a named reason: {skipped}"
    )


def test_second_run_is_noop_and_quarantine_not_reappended(tmp_path: Path) -> None:
    ds = _inc("data/*.csv", "at")
    ds["source"]["columns"] = {"id": "BIGINT", "at": "BIGINT"}
    ds["checks"] = [{"type": "between", "column": "id", "min": 0, "max": 100}]
    root = build(tmp_path / "p", [ds], {"data/a.csv": "id,at\n1,1\n500,2\nx,3\n4,4\n"})
    first = run(root).step("ev")
    assert first.status == StepStatus.SUCCESS, first.reason
    q1 = quarantined(root, "ev")
    assert len(q1) == 2, f"id 500 fails the check, 'x' does not parse: {q1}"
    store = DeltaStore(root / "warehouse")
    versions = (store.version("ev"), store.version("ev__quarantine"))
    second = run(root).step("ev")
    assert second.status == StepStatus.NOOP, second.to_dict()
    assert (store.version("ev"), store.version("ev__quarantine")) == versions
    assert_invariant(first, rows_in=4)
    assert_invariant(second)


def test_state_store_deleted_then_new_file_does_not_requarantine_old_rejects(
    tmp_path: Path,
) -> None:
    ds = _inc("data/*.csv", "at")
    ds["source"]["columns"] = {"id": "BIGINT", "at": "BIGINT"}
    old = "id,at\n" + "".join(f"{i},{i}\n" if i % 3 else f"bad{i},{i}\n" for i in range(1, 31))
    root = build(tmp_path / "p", [ds], {"data/a.csv": old})
    assert run(root).step("ev").status == StepStatus.SUCCESS
    n_bad = len(quarantined(root, "ev"))
    assert n_bad == 10
    for f in (root / ".lockgate").glob("state.db*"):
        os.remove(f)
    write_files(root, {"data/b.csv": "id,at\n100,100\nbad101,101\n"})
    step = run(root).step("ev")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    q = quarantined(root, "ev")
    keys = [(r.get("_lg_source_file"), r.get("_lg_line")) for r in q]
    dupes = sorted({k for k in keys if keys.count(k) > 1}, key=str)
    assert not dupes, f"old rejects appended to the quarantine again: {dupes[:5]} ({len(q)} rows)"
    assert len(q) == n_bad + 1, q
    ids = [r["id"] for r in published(root, "ev")]
    assert len(ids) == len(set(ids)) == 21, f"good rows duplicated or lost: {sorted(ids)}"


def test_grown_file_rereads_within_lookback_are_named_skips(tmp_path: Path) -> None:
    ds = _inc("data/log.csv", "at", 10)
    ds["source"]["columns"] = {"id": "BIGINT", "at": "BIGINT"}
    root = build(tmp_path / "p", [ds], {"data/log.csv": "id,at\n1,10\n2,20\n3,30\n"})
    run(root)
    with open(root / "data/log.csv", "a") as f:
        f.write("4,40\n5,50\n")
    step = run(root).step("ev")
    assert step.status == StepStatus.SUCCESS, step.reason[:300]
    ids = sorted(r["id"] for r in published(root, "ev"))
    assert ids == [1, 2, 3, 4, 5], f"duplicated or lost on re-read: {ids}"
    assert step.rows_out == 2, step.to_dict()
    assert_invariant(step)
    if step.rows_in > 2:
        assert getattr(step, "skip_reasons", None), (
            f"{step.rows_in - 2} re-read row(s) dropped without a named reason: {step.to_dict()}"
        )
