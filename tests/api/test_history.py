"""The read API over run and quality history (lockgate.api.runs, run_detail, check_history,
scores, quality) on a real project after real runs: the values the CLI and a dashboard show."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import lockgate
import lockgate.api as api
from lockgate.cli.common import _default
from lockgate.errors import ConfigError, UsageError
from lockgate.runloop.results import RunResult
from tests.cli.helpers import cli
from tests.run.helpers import csv_source, make_project, sql

CHECKS = [
    {"type": "between", "column": "amount", "min": 0, "max": 100},
    {"type": "not_null", "column": "amount"},
]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RunResult]]:
    """Three runs: 2 of 4 rows bad; a new good file (all 6 read: 2 bad); nothing new (noop)."""
    root = make_project(
        tmp_path_factory.mktemp("api") / "p",
        [
            csv_source(
                "o", "data/*.csv", columns={"id": "BIGINT", "amount": "DOUBLE"}, checks=CHECKS
            ),
            sql("total", "SELECT count(*) AS n, sum(amount) AS amount FROM o"),
        ],
        files={"data/a.csv": "id,amount\n1,5\n2,-1\n3,\n4,50\n"},
    )
    results = [lockgate.run(root)]
    (root / "data" / "b.csv").write_text("id,amount\n5,7\n6,8\n")
    results.append(lockgate.run(root))
    results.append(lockgate.run(root))
    return root, results


def test_runs_newest_first_with_status_filter(history: tuple[Path, list[RunResult]]) -> None:
    root, results = history
    runs = api.runs(root)
    assert [r.run_id for r in runs] == [r.run_id for r in reversed(results)]
    assert [r.seq for r in runs] == sorted((r.seq for r in runs), reverse=True)
    assert {r.status for r in runs} == {"success"}
    assert runs[1].summary is not None and runs[1].summary["rows_quarantined"] == 2
    assert [r.run_id for r in api.runs(root, limit=1)] == [results[-1].run_id]
    assert api.runs(root, status="failed") == []
    assert lockgate.runs(root, limit=2) == runs[:2]


def test_run_detail_has_steps_attempts_and_checks(history: tuple[Path, list[RunResult]]) -> None:
    root, results = history
    first = results[0]
    detail = api.run_detail(root, first.run_id[:10])
    assert (detail["run_id"], detail["status"]) == (first.run_id, "success")
    steps = {s["dataset"]: s for s in detail["steps"]}
    assert set(steps) == {"o", "total"}
    o = steps["o"]
    assert (o["rows_in"], o["rows_out"], o["rows_quarantined"]) == (4, 2, 2)
    assert [a["status"] for a in o["attempt_log"]] == ["success"]
    checks = {c["check_name"]: c for c in o["checks"]}
    assert checks["amount_between"]["failing_rows"] == 1
    assert checks["amount_not_null"]["failing_rows"] == 1
    assert all(c["run_id"] == first.run_id and c["finished_at"] for c in o["checks"])
    assert steps["total"]["input_versions"]  # the pinned input of the downstream step
    with pytest.raises(UsageError, match="no run 'ffffffff'"):
        api.run_detail(root, "ffffffff")


def test_cli_runs_renders_the_api(history: tuple[Path, list[RunResult]]) -> None:
    root, results = history
    r = cli("runs", results[0].run_id, "--json", "-p", str(root))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads(
        json.dumps(api.run_detail(root, results[0].run_id), default=_default)
    )


def test_check_history_is_a_table_newest_step_first(
    history: tuple[Path, list[RunResult]],
) -> None:
    root, results = history
    table = api.check_history(root, "o")
    rows = table.to_pylist()
    ran_checks = [r.run_id for r in results[:2]]  # the noop run evaluated no checks
    assert [r["run_id"] for r in rows] == [ran_checks[1]] * 2 + [ran_checks[0]] * 2
    assert [r["check_name"] for r in rows[:2]] == ["amount_between", "amount_not_null"]
    assert [r["failing_rows"] for r in rows] == [1, 1, 1, 1]
    assert [r["fraction"] for r in rows] == pytest.approx([1 / 6, 1 / 6, 0.25, 0.25])
    assert [r["passed"] for r in rows] == [False] * 4
    assert [r["dimension"] for r in rows[:2]] == ["accuracy", "completeness"]
    assert all(r["finished_at"].tzinfo is not None for r in rows)
    assert set(table.column_names) >= {"observed", "dimension", "severity", "step_id"}
    only = api.check_history(root, "o", check="amount_not_null", limit=1).to_pylist()
    assert [(r["run_id"], r["failing_rows"]) for r in only] == [(ran_checks[1], 1)]
    assert api.check_history(root, "total").num_rows == 0
    with pytest.raises(UsageError, match="did you mean"):
        api.check_history(root, "o", check="amount_betwen")
    with pytest.raises(ConfigError):
        api.check_history(root, "oo")


def test_scores_over_time(history: tuple[Path, list[RunResult]]) -> None:
    root, results = history
    table = api.scores(root, "o")
    rows = table.to_pylist()
    overall = [(r["run_id"], r["score"]) for r in rows if r["dimension"] == "overall"]
    assert [run for run, _ in overall] == [results[1].run_id, results[0].run_id]
    assert [s for _, s in overall] == pytest.approx([5 / 6, 0.75])
    assert results[1].step("o").scores["overall"] == pytest.approx(5 / 6)
    assert {r["dataset"] for r in rows} == {"o"}
    assert api.scores(root).to_pylist() == rows  # only "o" has checks
    assert {r["run_id"] for r in api.scores(root, "o", limit=1).to_pylist()} == {results[1].run_id}
    assert api.scores(root, since="1d").num_rows == len(rows)
    assert api.scores(root, since=datetime.now(UTC) + timedelta(hours=1)).num_rows == 0
    assert api.scores(root, "o", since="2000-01-01").num_rows == len(rows)
    with pytest.raises(UsageError, match="neither a time nor a duration"):
        api.scores(root, since="yesterday")


def test_quality_is_what_the_cli_prints(history: tuple[Path, list[RunResult]]) -> None:
    root, results = history
    q = api.quality(root, "o")
    assert [r["run_id"] for r in q["runs"]] == [results[0].run_id, results[1].run_id]
    assert q["runs"][0]["scores"] == pytest.approx(
        {"accuracy": 0.75, "completeness": 0.75, "overall": 0.75}
    )
    assert q["runs"][1]["scores"]["overall"] == pytest.approx(5 / 6)
    r = cli("quality", "o", "--json", "-p", str(root))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == json.loads(json.dumps(q, default=_default))
