"""Exactly-once edge cases of the run loop found in review."""

from __future__ import annotations

from pathlib import Path

import pytest

import lockgate
from lockgate.runloop.results import StepStatus
from tests.run.helpers import csv_source, make_project


def test_fresh_state_store_does_not_skip_publishes(tmp_path: Path) -> None:
    """A new state store (seq restarts at 1) over an existing warehouse must still publish:
    the Delta txn version of an earlier, unrelated run must not swallow new batches."""
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "events", "data/*.csv", incremental={"cursor": "id"}, write={"mode": "append"}
            )
        ],
        files={"data/a.csv": "id,v\n1,a\n2,b\n"},
    )
    for _ in range(3):  # a few runs so the table's txn version is ahead of a new seq
        (root / "data" / f"x{_}.csv").write_text(f"id,v\n{10 + _},x\n")
        lockgate.run(root)
    assert lockgate.read(root, "events").num_rows == 5
    (root / ".lockgate" / "state.db").unlink()
    (root / "data" / "b.csv").write_text("id,v\n100,new\n")
    res = lockgate.run(root)
    step = res.step("events")
    assert step.status == StepStatus.SUCCESS, step
    ids = sorted(lockgate.read(root, "events").column("id").to_pylist())
    assert ids == [1, 2, 10, 11, 12, 100]


@pytest.mark.parametrize(
    "incremental",
    [{"cursor": "ts"}, {"cursor": "ts", "lookback": "1d"}],
    ids=["no-lookback", "lookback"],
)
def test_null_cursor_rows_not_appended_again_when_their_file_is_reread(
    tmp_path: Path, incremental: dict[str, str]
) -> None:
    """Sources keep NULL-cursor rows (no watermark can place them); a file that grows is
    read again, and its NULL-cursor rows must not be appended a second time."""
    root = make_project(
        tmp_path / "p",
        [csv_source("events", "data/*.csv", incremental=incremental, write={"mode": "append"})],
        files={"data/a.csv": "id,ts\n1,2024-01-01 00:00:00\n2,\n"},
    )
    lockgate.run(root)
    with open(root / "data/a.csv", "a") as f:
        f.write("3,2024-01-03 00:00:00\n4,\n")
    res = lockgate.run(root)
    assert res.step("events").rows_out == 2
    ids = sorted(lockgate.read(root, "events").column("id").to_pylist())
    assert ids == [1, 2, 3, 4]
