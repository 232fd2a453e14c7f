"""Every record a step reads is published, quarantined or skipped for a named reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlglot import exp
from typer.testing import CliRunner

import lockgate
from lockgate.cli.app import app
from lockgate.runloop.results import StepResult, StepStatus
from lockgate.runloop.stages import split as split_mod
from lockgate.storage import DeltaStore
from tests.run.helpers import csv_source, make_project, sql


def assert_accounted(s: StepResult) -> None:
    assert s.rows_skipped == sum(s.skip_reasons.values()), s
    assert s.rows_in == s.rows_out + s.rows_quarantined + s.rows_skipped, s


def _events(tmp_path: Path, first: str, **incremental: Any) -> Path:
    return make_project(
        tmp_path / "p",
        [
            csv_source(
                "events",
                "data/*.csv",
                columns={"id": "INTEGER", "ts": "TIMESTAMP"},
                incremental={"cursor": "ts", **incremental},
            )
        ],
        files={"data/a.csv": first},
    )


def _ids(root: Path, name: str = "events", **kw: Any) -> list[Any]:
    return sorted(lockgate.read(root, name, **kw).column("id").to_pylist())


def test_late_record_in_a_new_file_is_quarantined_and_counted(tmp_path: Path) -> None:
    root = _events(tmp_path, "id,ts\n1,2024-01-05 00:00:00\n", lookback="1d")
    lockgate.run(root)
    (root / "data/b.csv").write_text("id,ts\n2,2024-01-01 00:00:00\n3,2024-01-06 00:00:00\n")
    s = lockgate.run(root).step("events")
    assert (s.rows_in, s.rows_out, s.rows_quarantined, s.rows_skipped) == (2, 1, 1, 0)
    assert_accounted(s)
    assert _ids(root) == [1, 3]
    q = lockgate.read(root, "events", quarantine=True).to_pylist()
    assert [(r["id"], r["_lg_failed_checks"]) for r in q] == [(2, ["late"])]
    assert "late" in q[0]["_lg_reason"] and "ts" in q[0]["_lg_reason"]


@pytest.mark.parametrize(
    ("policy", "published", "skipped"),
    [("accept", [1, 2, 3], {}), ("skip", [1, 3], {"late": 1})],
)
def test_late_policy(
    tmp_path: Path, policy: str, published: list[int], skipped: dict[str, int]
) -> None:
    root = _events(tmp_path, "id,ts\n1,2024-01-05 00:00:00\n", late=policy)
    lockgate.run(root)
    (root / "data/b.csv").write_text("id,ts\n2,2024-01-01 00:00:00\n3,2024-01-06 00:00:00\n")
    s = lockgate.run(root).step("events")
    assert s.rows_in == 2 and s.rows_quarantined == 0 and s.skip_reasons == skipped
    assert_accounted(s)
    assert _ids(root) == published


def test_new_row_at_the_watermark_is_published_and_rereads_are_not(tmp_path: Path) -> None:
    # no lookback: the boundary (cursor == watermark) is read again; a new row there is new
    root = _events(tmp_path, "id,ts\n1,2024-01-05 00:00:00\n")
    lockgate.run(root)
    (root / "data/b.csv").write_text("id,ts\n2,2024-01-05 00:00:00\n")
    s = lockgate.run(root).step("events")
    assert (s.rows_in, s.rows_out, s.rows_skipped) == (1, 1, 0)
    assert _ids(root) == [1, 2]


def test_a_grown_file_rereads_its_old_rows_as_already_published(tmp_path: Path) -> None:
    root = _events(tmp_path, "id,ts\n1,2024-01-01 00:00:00\n2,2024-01-05 00:00:00\n")
    lockgate.run(root)
    with (root / "data/a.csv").open("a") as f:
        f.write("3,2024-01-06 00:00:00\n")
    s = lockgate.run(root).step("events")
    assert s.status == StepStatus.SUCCESS
    assert (s.rows_in, s.rows_out, s.rows_quarantined) == (3, 1, 0)
    assert s.skip_reasons == {"already_published": 2}
    assert _ids(root) == [1, 2, 3]
    assert not DeltaStore(root / "warehouse").exists("events__quarantine")  # nothing "late"


def test_touched_file_with_only_old_rows_is_no_new_rows(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "events",
                "data/*.csv",
                incremental={"cursor": "ts"},
                gate="block",
                checks=[{"type": "row_count", "min": 1}],
            )
        ],
        files={"data/a.csv": "id,ts\n1,2024-01-01 00:00:00\n"},
    )
    lockgate.run(root)
    (root / "data/a.csv").write_text("id,ts\n1,2024-01-01 00:00:00\n")  # same rows, new mtime
    s = lockgate.run(root).step("events")
    assert s.status == StepStatus.SUCCESS, s.reason
    assert s.skip_reasons == {"already_published": 1}
    assert_accounted(s)


def test_lookback_reread_of_a_quarantined_row_is_not_quarantined_again(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "events",
                "data/*.csv",
                columns={"id": "INTEGER", "ts": "TIMESTAMP", "v": "INTEGER"},
                incremental={"cursor": "ts", "lookback": "2d"},
                checks=[{"type": "not_null", "column": "v"}],
            )
        ],
        files={"data/a.csv": "id,ts,v\n1,2024-01-04 00:00:00,\n2,2024-01-05 00:00:00,1\n"},
    )
    first = lockgate.run(root).step("events")
    assert (first.rows_out, first.rows_quarantined) == (1, 1)
    with (root / "data/a.csv").open("a") as f:
        f.write("3,2024-01-06 00:00:00,1\n")
    s = lockgate.run(root).step("events")
    assert s.skip_reasons == {"already_published": 1, "already_quarantined": 1}
    assert (s.rows_out, s.rows_quarantined) == (1, 0)
    assert_accounted(s)
    assert _ids(root, quarantine=True) == [1]


def test_merge_duplicates_in_the_batch_are_counted(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "orders",
                "data/o.csv",
                write={"mode": "merge", "keys": ["id"], "order_by": "v"},
            )
        ],
        files={"data/o.csv": "id,v\n1,1\n1,2\n1,3\n2,1\n"},
    )
    res = lockgate.run(root)
    s = res.step("orders")
    assert (s.rows_in, s.rows_out, s.skip_reasons) == (4, 2, {"duplicate_in_window": 2})
    assert_accounted(s)
    # the history keeps the skips: `runs RUN_ID` and `show` read them back
    from lockgate.state import StateStore

    detail = StateStore.open(lockgate.load_project(root).state_url).get_run(res.run_id)
    assert detail is not None
    (step,) = detail.steps
    assert (step.rows_in, step.rows_out, step.rows_quarantined, step.rows_skipped) == (4, 2, 0, 2)
    assert step.skip_reasons == {"duplicate_in_window": 2}


def test_merge_reread_of_an_older_version_is_superseded_not_upserted(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "orders",
                "data/*.csv",
                columns={"id": "INTEGER", "ts": "INTEGER", "v": "VARCHAR"},
                incremental={"cursor": "ts", "lookback": 10},
                write={"mode": "merge", "keys": ["id"]},
            )
        ],
        files={"data/a.csv": "id,ts,v\n1,1,old\n", "data/b.csv": "id,ts,v\n1,5,new\n"},
    )
    lockgate.run(root)
    with (root / "data/a.csv").open("a") as f:  # a.csv grows: its old version is read again
        f.write("2,6,x\n")
    s = lockgate.run(root).step("orders")
    assert s.skip_reasons == {"superseded": 1}
    assert_accounted(s)
    rows = {r["id"]: r["v"] for r in lockgate.read(root, "orders").to_pylist()}
    assert rows == {1: "new", 2: "x"}  # not regressed to "old"


def test_merge_null_keys_under_a_warn_not_null_are_not_collapsed(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "orders",
                "data/o.csv",
                columns={"id": "INTEGER", "v": "INTEGER"},
                checks=[{"type": "not_null", "column": "id", "severity": "warn"}],
                write={"mode": "merge", "keys": ["id"]},
            )
        ],
        files={"data/o.csv": "id,v\n1,1\n,2\n,3\n"},
    )
    s = lockgate.run(root).step("orders")
    assert (s.rows_out, s.rows_quarantined, s.rows_skipped) == (1, 2, 0)
    assert sorted(lockgate.read(root, "orders", quarantine=True).column("v").to_pylist()) == [2, 3]


def test_null_cursor_rows_of_an_incremental_transform_are_published_once(
    tmp_path: Path,
) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source("raw", "data/*.csv", incremental={"cursor": "ts"}),
            sql("t", "select * from raw", incremental={"cursor": "ts"}),
        ],
        files={"data/a.csv": "id,ts\n1,2024-01-05 00:00:00\n"},
    )
    lockgate.run(root)
    (root / "data/b.csv").write_text("id,ts\n2,\n3,2024-01-06 00:00:00\n")
    s = lockgate.run(root).step("t")
    assert_accounted(s)
    assert _ids(root, "t") == [1, 2, 3]  # the NULL-cursor row 2 is not lost
    (root / "data/c.csv").write_text("id,ts\n4,2024-01-07 00:00:00\n")
    s = lockgate.run(root).step("t")
    assert s.skip_reasons.get("already_published", 0) >= 1  # row 2 read again, not re-added
    assert_accounted(s)
    assert _ids(root, "t") == [1, 2, 3, 4]


def test_a_step_that_loses_a_row_fails_before_publishing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("events", "data/a.csv")],
        files={"data/a.csv": "id\n1\n2\n3\n"},
    )
    real = split_mod._publish_query

    def lossy(*args: Any, **kw: Any) -> exp.Select:  # a bug that silently drops a row
        return real(*args, **kw).where(exp.column("id").neq(2))

    monkeypatch.setattr(split_mod, "_publish_query", lossy)
    res = lockgate.run(root)
    s = res.step("events")
    assert s.status == StepStatus.FAILED
    assert "unaccounted" in s.reason and "3 records read" in s.reason
    assert not DeltaStore(root / "warehouse").exists("events")


def test_run_json_and_summary_report_skips(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [csv_source("orders", "data/o.csv", write={"mode": "merge", "keys": ["id"]})],
        files={"data/o.csv": "id,v\n1,1\n1,2\n"},
    )
    runner = CliRunner()
    out = runner.invoke(app, ["run", "--project", str(root), "--json"])
    assert out.exit_code == 0, out.output
    step = json.loads(out.stdout)["steps"][0]
    assert {k: step[k] for k in ("rows_in", "rows_out", "rows_quarantined", "rows_skipped")} == {
        "rows_in": 2,
        "rows_out": 1,
        "rows_quarantined": 0,
        "rows_skipped": 1,
    }
    assert step["skip_reasons"] == {"duplicate_in_window": 1}
    (root / "data/o.csv").write_text("id,v\n2,1\n2,2\n2,3\n")
    out = runner.invoke(app, ["run", "--project", str(root)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "skipped" in out.stdout and "duplicate_in_window=2" in out.stdout


def test_a_grown_file_does_not_quarantine_its_old_bad_lines_again(tmp_path: Path) -> None:
    root = _events(tmp_path, "id,ts\n1,2024-01-01 00:00:00\nx,2024-01-02 00:00:00\n")
    first = lockgate.run(root).step("events")
    assert (first.rows_in, first.rows_out, first.rows_quarantined) == (2, 1, 1)
    with (root / "data/a.csv").open("a") as f:
        f.write("3,2024-01-06 00:00:00\ny,2024-01-07 00:00:00\n")
    s = lockgate.run(root).step("events")
    assert (s.rows_in, s.rows_out, s.rows_quarantined) == (4, 1, 1)
    assert s.skip_reasons == {"already_published": 1, "already_quarantined": 1}
    q = lockgate.read(root, "events", quarantine=True).to_pylist()
    assert sorted(r["_lg_line"] for r in q) == [3, 5]  # each bad line once


def test_a_quarantined_row_above_the_watermark_is_not_quarantined_again(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "events",
                "data/*.csv",
                columns={"id": "INTEGER", "ts": "INTEGER", "v": "INTEGER"},
                incremental={"cursor": "ts"},
                checks=[{"type": "not_null", "column": "v"}],
            )
        ],
        files={"data/a.csv": "id,ts,v\n1,1,1\n2,9,\n"},  # row 2 fails, above the watermark 1
    )
    lockgate.run(root)
    with (root / "data/a.csv").open("a") as f:
        f.write("3,2,1\n")
    s = lockgate.run(root).step("events")
    assert s.skip_reasons == {"already_published": 1, "already_quarantined": 1}
    assert (s.rows_out, s.rows_quarantined) == (1, 0)
    assert _ids(root, quarantine=True) == [2]


def test_a_batch_of_older_rows_does_not_move_the_watermark_back(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "events",
                "data/*.csv",
                columns={"id": "INTEGER", "ts": "INTEGER"},
                incremental={"cursor": "ts", "lookback": 10},
            )
        ],
        files={"data/a.csv": "id,ts\n1,1\n2,20\n"},
    )
    assert lockgate.run(root).step("events").watermark == "20"
    (root / "data/b.csv").write_text("id,ts\n3,15\n")  # inside the lookback window
    s = lockgate.run(root).step("events")
    assert (s.rows_out, s.watermark) == (1, "20")
    (root / "data/c.csv").write_text("id,ts\n4,9\n")  # older than 20 - 10: late
    s = lockgate.run(root).step("events")
    assert (s.rows_out, s.rows_quarantined) == (0, 1)


def test_state_store_deleted_old_rows_and_rejects_are_not_added_again(tmp_path: Path) -> None:
    root = _events(tmp_path, "id,ts\n1,2024-01-01 00:00:00\nx,2024-01-02 00:00:00\n")
    lockgate.run(root)
    shutil.rmtree(root / ".lockgate")  # the state store is lost; the warehouse is the truth
    (root / "data/b.csv").write_text("id,ts\n3,2024-01-03 00:00:00\n")
    s = lockgate.run(root).step("events")
    assert (s.rows_in, s.rows_out, s.rows_quarantined) == (3, 1, 0)
    assert s.skip_reasons == {"already_published": 1, "already_quarantined": 1}
    assert _ids(root) == [1, 3]
    assert lockgate.read(root, "events", quarantine=True).num_rows == 1


@pytest.mark.parametrize(("late", "published"), [("accept", [1, 2, 3]), ("quarantine", [1, 3])])
def test_an_incremental_transform_sees_rows_appended_upstream_below_its_cursor(
    tmp_path: Path, late: str, published: list[int]
) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source(
                "raw",
                "data/*.csv",
                columns={"id": "INTEGER", "ts": "INTEGER"},
                incremental={"cursor": "ts", "late": "accept"},
            ),
            sql("t", "select * from raw", incremental={"cursor": "ts", "late": late}),
        ],
        files={"data/a.csv": "id,ts\n1,5\n"},
    )
    lockgate.run(root)
    (root / "data/b.csv").write_text("id,ts\n2,1\n3,6\n")  # 2 is late, accepted upstream
    s = lockgate.run(root).step("t")
    assert_accounted(s)
    # row 1 (at t's watermark) is read again and skipped; 2 comes from the file raw added
    assert (s.rows_in, s.rows_out, s.rows_quarantined) == (
        3,
        len(published) - 1,
        3 - len(published),
    )
    assert s.skip_reasons == {"already_published": 1}
    assert _ids(root, "t") == published
