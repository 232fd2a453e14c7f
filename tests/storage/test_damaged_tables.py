"""The warehouse is the truth: a table whose log or data files were deleted or damaged fails
*its* dataset (clearly, with the repair command), the other datasets run, the failed run is
in the history, and ``--full-refresh`` rebuilds the table from its inputs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import deltalake
import pytest

from lockgate.project import load_project
from lockgate.runloop.plan import plan
from lockgate.runloop.results import RunResult, RunStatus, StepStatus
from lockgate.runloop.runner import run
from lockgate.state import StateStore
from lockgate.storage.health import DAMAGED_DIR
from tests.run.helpers import csv_source, make_project, sql

DATASETS = [
    csv_source(
        "ev",
        "data/*.csv",
        incremental={"cursor": "ts"},
        columns={"ts": "BIGINT", "v": "BIGINT"},
        checks=[{"type": "between", "column": "v", "min": 0}],
    ),
    sql("ev_sum", "SELECT count(*) AS n, sum(v) AS total FROM ev"),
    csv_source("other", "o.csv"),
]


def _logs(table: Path) -> list[Path]:
    return sorted((table / "_delta_log").glob("*.json"))


def _delete_latest_log(table: Path) -> None:
    _logs(table)[-1].unlink()


def _truncate_latest_log(table: Path) -> None:
    log = _logs(table)[-1]
    log.write_bytes(log.read_bytes()[:40])


def _garbage_in_latest_log(table: Path) -> None:
    _logs(table)[-1].write_text('{"add": {"path": 42}}\n\x00\xff')


def _delete_a_data_file(table: Path) -> None:
    files = deltalake.DeltaTable(str(table)).file_uris()
    Path(files[-1].removeprefix("file://")).unlink()


def _delete_checkpoint(table: Path) -> None:
    deltalake.DeltaTable(str(table)).create_checkpoint()
    for f in (table / "_delta_log").glob("*.checkpoint*.parquet"):
        f.unlink()


def _delete_middle_log(table: Path) -> None:
    _logs(table)[1].unlink()


DAMAGE: dict[str, Callable[[Path], None]] = {
    "delete_latest_log": _delete_latest_log,
    "truncate_latest_log": _truncate_latest_log,
    "garbage_latest_log": _garbage_in_latest_log,
    "delete_data_file": _delete_a_data_file,
    "delete_checkpoint": _delete_checkpoint,
    "delete_middle_log": _delete_middle_log,
}


def _project(tmp_path: Path) -> Path:
    files = {
        "data/1.csv": "ts,v\n1,1\n2,2\n3,-3\n",
        "data/2.csv": "ts,v\n4,4\n5,5\n",
        "o.csv": "k\n1\n",
    }
    return make_project(tmp_path / "p", DATASETS, files=files)


def _run(root: Path, **kw: bool) -> RunResult:
    return run(load_project(root), **kw)


def _load_three_batches(root: Path) -> None:
    assert _run(root).status == RunStatus.SUCCESS
    (root / "data" / "3.csv").write_text("ts,v\n6,6\n7,-7\n")
    assert _run(root).status == RunStatus.SUCCESS
    (root / "data" / "4.csv").write_text("ts,v\n8,8\n")
    assert _run(root).status == RunStatus.SUCCESS


def _values(root: Path, table: str = "ev") -> list[int]:
    t = deltalake.DeltaTable(str(root / "warehouse" / table)).to_pyarrow_table()
    return sorted(t.column("v").to_pylist())


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_table_fails_its_dataset_only_and_full_refresh_repairs(
    tmp_path: Path, damage: str
) -> None:
    root = _project(tmp_path)
    _load_three_batches(root)
    good = [1, 2, 4, 5, 6, 8]
    assert _values(root) == good
    DAMAGE[damage](root / "warehouse" / "ev")

    (root / "data" / "5.csv").write_text("ts,v\n9,9\n")
    (root / "o.csv").write_text("k\n1\n2\n")
    r = _run(root)
    ev = r.step("ev")
    assert ev.status == StepStatus.FAILED, ev
    assert "--full-refresh" in (ev.hint or "") and "--select ev" in (ev.hint or "")
    assert r.step("ev_sum").status == StepStatus.UPSTREAM_FAILED
    assert r.step("other").status == StepStatus.SUCCESS and r.step("other").rows_out == 2
    assert r.status == RunStatus.PARTIAL
    with StateStore.open(load_project(root).state_url) as st:  # the failed run is in history
        runs = st.list_runs(load_project(root).config.name)
    assert runs[0].run_id == r.run_id and runs[0].status == "partial"
    assert _run(root).step("ev").status == StepStatus.FAILED  # it stays failed: no guessing

    dry = {s.dataset: s for s in plan(load_project(root)).steps}
    assert dry["ev"].status == StepStatus.FAILED and "--full-refresh" in (dry["ev"].hint or "")

    r = _run(root, full_refresh=True)
    assert r.status == RunStatus.SUCCESS, [(s.dataset, s.reason) for s in r.steps]
    assert _values(root) == [*good, 9]
    q = deltalake.DeltaTable(str(root / "warehouse" / "ev__quarantine")).to_pyarrow_table()
    assert sorted(q.column("v").to_pylist()) == [-7, -3]
    sums = deltalake.DeltaTable(str(root / "warehouse" / "ev_sum")).to_pyarrow_table()
    assert sums.column("total").to_pylist() == [sum(good) + 9]
    nxt = _run(root)  # and the project is back to normal
    assert nxt.status == RunStatus.SUCCESS and nxt.step("ev").status == StepStatus.NOOP
    if damage in ("truncate_latest_log", "garbage_latest_log", "delete_checkpoint"):
        assert any((root / "warehouse" / DAMAGED_DIR).iterdir())  # kept for inspection


@pytest.mark.parametrize("damage", ["delete_latest_log", "truncate_latest_log"])
def test_damaged_quarantine_fails_its_dataset(tmp_path: Path, damage: str) -> None:
    root = _project(tmp_path)
    _load_three_batches(root)
    DAMAGE[damage](root / "warehouse" / "ev__quarantine")
    (root / "data" / "5.csv").write_text("ts,v\n9,9\n")
    r = _run(root)
    assert r.step("ev").status == StepStatus.FAILED
    assert "ev__quarantine" in r.step("ev").reason
    r = _run(root, full_refresh=True)
    assert r.status == RunStatus.SUCCESS
    q = deltalake.DeltaTable(str(root / "warehouse" / "ev__quarantine")).to_pyarrow_table()
    assert sorted(q.column("v").to_pylist()) == [-7, -3]


def test_unreadable_table_does_not_stop_a_run_of_other_datasets(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _load_three_batches(root)
    _truncate_latest_log(root / "warehouse" / "ev")
    (root / "o.csv").write_text("k\n1\n2\n3\n")
    r = _run(root)
    assert r.step("other").rows_out == 3
    r = run(load_project(root), select=["other"])  # a run not selecting ev at all
    assert r.status == RunStatus.SUCCESS


def test_damaged_upstream_named_when_only_the_downstream_runs(tmp_path: Path) -> None:
    root = _project(tmp_path)
    _load_three_batches(root)
    _delete_a_data_file(root / "warehouse" / "ev")
    (root / "warehouse" / "ev_sum" / "_delta_log").rename(root / "ev_sum_log")  # force a rerun
    r = run(load_project(root), select=["ev_sum"], full_refresh=True)
    step = r.step("ev_sum")
    assert step.status == StepStatus.FAILED and step.attempts == 1  # not retried as "I/O"
    assert "reads 'ev'" in step.reason and "missing" in step.reason
    assert "--select ev --full-refresh" in (step.hint or "")
    assert (root / "warehouse" / "ev" / "_delta_log").is_dir()  # the upstream is not touched
