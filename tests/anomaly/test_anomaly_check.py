"""``type: anomaly`` checks in a real run: the metric is computed in the audit, judged against
the check's earlier published values in the state store, and gates like any check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import lockgate
from lockgate.errors import ConfigError
from lockgate.quality.checks import Anomaly
from lockgate.runloop.runner import run
from lockgate.state import StateStore
from tests.run.helpers import csv_source, make_project

COLUMNS = {"id": "BIGINT", "amount": "DOUBLE", "email": "VARCHAR"}


def _csv(n: int, *, null_every: int = 0) -> str:
    lines = ["id,amount,email"]
    for i in range(n):
        email = "" if null_every and i % null_every == 0 else f"u{i}@x.io"
        lines.append(f"{i},{10 + i % 7}.0,{email}")
    return "\n".join(lines) + "\n"


def _project(root: Path, checks: list[dict[str, Any]], rows: int = 100) -> lockgate.Project:
    make_project(
        root,
        [
            csv_source(
                "events",
                "data/events.csv",
                columns=COLUMNS,
                write={"mode": "overwrite"},
                checks=checks,
            )
        ],
        files={"data/events.csv": _csv(rows)},
    )
    return lockgate.load_project(root)


def _seed(project: lockgate.Project, check: str, values: list[float]) -> None:
    """Earlier *published* steps of ``events`` with ``check`` observed at ``values``."""
    name = project.config.name
    with StateStore.open(project.state_url) as st:
        for v in values:
            r = st.start_run(name)
            step = st.start_step(r.run_id, name, "events")
            st.record_check_results(
                step,
                r.run_id,
                name,
                "events",
                [{"name": check, "type": "anomaly", "passed": True, "observed": v}],
            )
            st.finish_step(step, status="success", rows_in=int(v), rows_out=int(v))
            st.finish_run(r.run_id, "success")


def _step_checks(project: lockgate.Project, result: Any) -> list[Any]:
    with StateStore.open(project.state_url) as st:
        detail = st.get_run(result.run_id)
    assert detail is not None
    return [c for cs in detail.checks.values() for c in cs]


def test_a_volume_drop_blocks_the_batch_with_observed_value_and_band(tmp_path: Path) -> None:
    project = _project(tmp_path, [{"type": "anomaly", "metric": "row_count"}], rows=4)
    _seed(project, "row_count_anomaly", [100, 98, 103, 101, 99, 102, 100, 97, 104, 100, 101])
    result = run(project)
    (step,) = result.steps
    assert step.status == "blocked", step
    assert step.rows_out == 0
    (check,) = step.checks
    assert check["passed"] is False and check["observed"] == 4.0
    band = check["expected"]
    assert band["low"] < 100 < band["high"] and band["history"] == 11
    assert "row_count anomaly" in check["message"] and "expected [" in check["message"]
    # recorded with its band, and the blocked value does not join the baseline
    (rec,) = _step_checks(project, result)
    assert rec.observed == 4.0 and rec.expected == band
    with StateStore.open(project.state_url) as st:
        base = st.check_values(project.config.name, "events", "row_count_anomaly")
    assert [v for _, v in base][-1] == 101.0 and 4.0 not in [v for _, v in base]


def test_a_normal_batch_passes_and_becomes_history(tmp_path: Path) -> None:
    project = _project(tmp_path, [{"type": "anomaly", "metric": "row_count"}], rows=100)
    _seed(project, "row_count_anomaly", [100, 98, 103, 101, 99, 102, 100, 97, 104, 100, 101])
    result = run(project)
    (step,) = result.steps
    assert step.status == "success" and step.rows_out == 100
    (check,) = step.checks
    assert check["passed"] and check["expected"]["low"] <= 100 <= check["expected"]["high"]
    with StateStore.open(project.state_url) as st:
        base = st.check_values(project.config.name, "events", "row_count_anomaly")
    assert len(base) == 12 and base[-1][1] == 100.0


def test_warn_severity_reports_and_publishes(tmp_path: Path) -> None:
    checks = [{"type": "anomaly", "metric": "null_rate(email)", "severity": "warn"}]
    project = _project(tmp_path, checks, rows=100)
    (tmp_path / "data/events.csv").write_text(_csv(100, null_every=2))  # 50 % NULL emails
    _seed(project, "email_null_rate_anomaly", [0.01, 0.012, 0.009, 0.011, 0.01] * 3)
    result = run(project)
    (step,) = result.steps
    assert step.status == "success" and step.rows_out == 100
    (check,) = step.checks
    assert not check["passed"] and check["severity"] == "warn"
    assert check["observed"] == pytest.approx(0.5)


def test_learning_until_min_history(tmp_path: Path) -> None:
    project = _project(tmp_path, [{"type": "anomaly", "metric": "row_count"}], rows=3)
    _seed(project, "row_count_anomaly", [100, 100, 101])
    (step,) = run(project).steps
    (check,) = step.checks
    assert step.status == "success" and check["passed"]
    assert check["message"] == "learning: 3 of 10 earlier values (passes until then)"
    assert check["expected"] is None


def test_direction_up_ignores_a_fall(tmp_path: Path) -> None:
    checks = [{"type": "anomaly", "metric": "mean(amount)", "direction": "up"}]
    project = _project(tmp_path, checks, rows=100)
    _seed(project, "amount_mean_anomaly", [500.0, 510.0, 495.0, 505.0, 500.0] * 3)
    (step,) = run(project).steps  # the mean is ~13: a fall
    (check,) = step.checks
    assert step.status == "success" and check["passed"] and "ignored" in check["message"]


@pytest.mark.parametrize(
    "check, problem",
    [
        ({"type": "anomaly", "metric": "mean(email)"}, "needs a numeric column"),
        ({"type": "anomaly", "metric": "freshness_lag(amount)"}, "DATE/TIMESTAMP"),
        ({"type": "anomaly", "metric": "null_rate(nope)"}, "uses column 'nope'"),
        ({"type": "anomaly", "metric": "mean"}, "needs a column"),
        ({"type": "anomaly", "metric": "row_count", "column": "id"}, "takes no column"),
        ({"type": "anomaly", "metric": "p99(amount)"}, "metric"),
        ({"type": "anomaly", "metric": "row_count", "sigma": 0}, "sigma"),
    ],
)
def test_bad_anomaly_checks_are_config_errors(
    tmp_path: Path, check: dict[str, Any], problem: str
) -> None:
    make_project(
        tmp_path,
        [csv_source("events", "data/events.csv", columns=COLUMNS, checks=[check])],
        files={"data/events.csv": _csv(3)},
    )
    with pytest.raises(ConfigError) as err:
        lockgate.load_project(tmp_path)
    assert problem in str(err.value)


def test_call_form_and_explicit_column_agree() -> None:
    a = Anomaly.model_validate({"type": "anomaly", "metric": "null_rate(email)"})
    b = Anomaly.model_validate({"type": "anomaly", "metric": "null_rate", "column": "email"})
    assert a == b and a.check_name == "email_null_rate_anomaly"
    with pytest.raises(ValueError, match="names column"):
        Anomaly.model_validate({"type": "anomaly", "metric": "mean(a)", "column": "b"})


def test_freshness_lag_metric_in_seconds(tmp_path: Path) -> None:
    from datetime import datetime

    make_project(
        tmp_path,
        [
            csv_source(
                "ticks",
                "data/t.csv",
                columns={"at": "TIMESTAMP"},
                checks=[{"type": "anomaly", "metric": "freshness_lag(at)"}],
            )
        ],
        files={"data/t.csv": "at\n2026-01-01 10:00:00\n2026-01-01 11:00:00\n"},
    )
    project = lockgate.load_project(tmp_path)
    (step,) = run(project, now=datetime(2026, 1, 1, 12, 0, 0)).steps
    (check,) = step.checks
    assert check["observed"] == 3600.0
