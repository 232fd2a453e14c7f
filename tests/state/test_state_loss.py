"""Losing the state store loses no rows and duplicates none: the warehouse says what was
published and quarantined. Unparseable records of files read again are quarantined once."""

from __future__ import annotations

import shutil
from pathlib import Path

import deltalake
import pytest

from lockgate.project import load_project
from lockgate.runloop.results import RunStatus
from lockgate.runloop.runner import run
from tests.run.helpers import csv_source, make_project

EVENTS = [
    csv_source(
        "ev", "data/*.csv", incremental={"cursor": "ts"}, columns={"ts": "BIGINT", "v": "BIGINT"}
    )
]


def _bad_file(first: int, n: int, every: int) -> str:
    """``n`` records from ts=first; every ``every``-th has an unconvertible ``v``."""
    lines = ["ts,v"]
    for i in range(first, first + n):
        lines.append(f"{i},x{i}" if i % every == 0 else f"{i},{i}")
    return "\n".join(lines) + "\n"


def _table(root: Path, name: str) -> list[dict[str, object]]:
    return deltalake.DeltaTable(str(root / "warehouse" / name)).to_pyarrow_table().to_pylist()


def _rejects(root: Path) -> list[tuple[object, object, object]]:
    return sorted(
        (Path(str(r["_lg_source_file"])).name, r["_lg_line"], r["_lg_raw_record"])
        for r in _table(root, "ev__quarantine")
    )


@pytest.mark.parametrize("lose", ["state_store", "nothing"])
def test_state_store_deleted_rejects_are_not_quarantined_again(tmp_path: Path, lose: str) -> None:
    root = make_project(tmp_path / "p", EVENTS, files={"data/1.csv": _bad_file(1, 3030, every=10)})
    r = run(load_project(root))
    assert r.status == RunStatus.SUCCESS and r.step("ev").rows_quarantined == 303
    before = _rejects(root)
    assert len(before) == 303
    if lose == "state_store":
        shutil.rmtree(root / ".lockgate")
    (root / "data" / "2.csv").write_text(_bad_file(5000, 20, every=10))
    r = run(load_project(root))
    ev = r.step("ev")
    assert r.status == RunStatus.SUCCESS
    assert ev.rows_out == 18 and ev.rows_quarantined == 2
    after = _rejects(root)
    assert len(after) == 305 and len(set(after)) == 305  # each bad record exactly once
    assert sorted(set(after) - set(before)) == sorted(
        ("2.csv", line, f"{ts},x{ts}") for line, ts in ((2, 5000), (12, 5010))
    )
    assert len(_table(root, "ev")) == 3030 - 303 + 18


def test_grown_file_quarantines_only_its_new_bad_records(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p", EVENTS, files={"data/1.csv": "ts,v\n1,1\n2,x\n"})
    run(load_project(root))
    shutil.rmtree(root / ".lockgate")  # nothing remembers which files were read
    # the file grows; the same bad text again, on a new line, is a new record
    (root / "data" / "1.csv").write_text("ts,v\n1,1\n2,x\n3,3\n2,x\n")
    r = run(load_project(root))
    assert r.step("ev").rows_quarantined == 1
    assert [(line, raw) for _, line, raw in _rejects(root)] == [(3, "2,x"), (5, "2,x")]
