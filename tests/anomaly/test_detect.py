"""The robust anomaly detector: behaviour on crafted histories, and precision/recall on
labelled synthetic histories against the plain z-score."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from lockgate.anomaly import Settings, detect, zscore
from lockgate.anomaly.history import metric_history
from lockgate.anomaly.synthetic import KINDS, evaluate, make_series
from lockgate.state.records import CheckRecord, StepInfo

DAY0 = dt.datetime(2026, 1, 5)  # a Monday


def daily(values: list[float]) -> list[tuple[dt.datetime, float]]:
    return [(DAY0 + dt.timedelta(days=i), v) for i, v in enumerate(values)]


def test_too_little_history_says_nothing() -> None:
    hist = daily([100.0] * 5)
    v = detect(hist, (DAY0 + dt.timedelta(days=5), 1e6))
    assert not v.anomalous and "only 5 values" in v.reason


def test_one_old_outlier_does_not_blind_the_baseline() -> None:
    rng = np.random.default_rng(1)
    values = list(100 + rng.normal(0, 2, 40))
    values[20] = 5000.0  # an old incident stays in the history
    hist = daily(values)
    at = DAY0 + dt.timedelta(days=40)
    assert detect(hist, (at, 160.0)).anomalous  # a plain z-score is blinded by it
    assert not zscore(hist[-28:], (at, 160.0))
    assert not detect(hist, (at, 103.0)).anomalous


def test_weekly_seasonality_weekends_are_normal_but_a_weekday_drop_is_not() -> None:
    rng = np.random.default_rng(2)
    values = [
        (40.0 if (DAY0 + dt.timedelta(days=i)).weekday() >= 5 else 100.0)
        * (1 + rng.normal(0, 0.03))
        for i in range(56)
    ]
    hist = daily(values)
    saturday = DAY0 + dt.timedelta(days=61)
    assert saturday.weekday() == 5
    v = detect(hist, (saturday, 41.0))
    assert not v.anomalous and v.expected is not None and v.expected < 50
    tuesday = DAY0 + dt.timedelta(days=57)
    v = detect(hist, (tuesday, 41.0))
    assert v.anomalous and "same weekday Tuesday" in v.reason and v.severity == "error"


def test_a_slow_drift_is_caught_while_it_moves() -> None:
    rng = np.random.default_rng(3)
    values = [100 * (1 + rng.normal(0, 0.02)) for _ in range(50)]
    values += [100 * (1 + 0.05 * k) * (1 + rng.normal(0, 0.02)) for k in range(1, 15)]
    alerts = [i for i in range(50, 64) if detect(daily(values[:i]), daily(values)[i]).anomalous]
    assert alerts and min(alerts) < 60


def test_flat_rate_history_has_an_absolute_floor() -> None:
    hist = daily([0.0] * 20)
    at = DAY0 + dt.timedelta(days=20)
    assert not detect(hist, (at, 0.002), Settings(abs_floor=0.001)).anomalous
    assert detect(hist, (at, 0.02), Settings(abs_floor=0.001)).anomalous


@pytest.mark.slow
def test_labelled_histories_precision_and_recall_beat_the_zscore() -> None:
    rng = np.random.default_rng(20261130)
    series = [make_series(rng, KINDS[i % len(KINDS)]) for i in range(80)]
    robust = evaluate(series, lambda h, p: detect(h, p).anomalous)
    plain = evaluate(series, lambda h, p: zscore(h, p))
    assert robust["precision"] >= 0.9 and robust["recall"] >= 0.9, robust
    assert robust["incident_precision"] >= 0.9, robust
    assert robust["recall"] > plain["recall"]
    assert robust["incident_precision"] >= plain["incident_precision"]


def _step(i: int, rows: int, quarantined: int) -> StepInfo:
    at = DAY0 + dt.timedelta(days=i)
    return StepInfo(
        step_id=i, run_id=f"{i:032x}", project="p", dataset="d", status="success",
        reason=None, started_at=at, finished_at=at, duration_s=1.0, attempts=1,
        rows_in=rows + quarantined, rows_out=rows, rows_quarantined=quarantined,
        input_versions={}, output_version=i, quarantine_version=None, watermark=None,
        schema_version=1, batch_id=None, message=None,
    )  # fmt: skip


def _check(i: int, name: str, kind: str, passed: bool, fraction: float) -> CheckRecord:
    return CheckRecord(
        step_id=i, run_id=f"{i:032x}", project="p", dataset="d", check_name=name,
        check_type=kind, dimension=None, severity="error", failing_rows=None,
        fraction=fraction, passed=passed, observed=None, samples=None, seconds=None,
        message=None,
    )  # fmt: skip


def test_metric_history_from_steps_and_checks(tmp_path: Path) -> None:
    steps = [_step(i, 100 + i, i % 2) for i in range(12)]
    checks = [
        _check(i, "x_not_null", "not_null", i != 11, 0.0 if i != 11 else 0.3) for i in range(12)
    ]
    hist = metric_history(steps, checks)
    assert [v for (_, v), _ in hist["row_count"]] == [100.0 + i for i in range(12)]
    assert hist["null_rate(x_not_null)"][-1][0][1] == 0.3
    assert hist["check_failure_rate"][-1][0][1] == 1.0
    assert hist["quarantine_rate"][1][0][1] == pytest.approx(1 / 102)
    last = hist["null_rate(x_not_null)"]
    verdict = detect([p for p, _ in last[:-1]], last[-1][0], Settings(abs_floor=0.001))
    assert verdict.anomalous
