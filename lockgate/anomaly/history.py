"""Metric history of a dataset from its recorded steps and check results, and the anomaly
verdict of its newest value per metric (``lockgate anomalies``).

Metrics per step that published: ``row_count`` (rows written), ``rows_in``,
``quarantine_rate`` (quarantined / read), ``check_failure_rate`` (failed checks / checks),
``null_rate(col)`` for each column with a ``not_null`` check (its failing fraction) and the
observed value of each aggregate check (``observed(check)``: a mean, a row count ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lockgate.anomaly.detect import Point, Settings, Verdict, detect
from lockgate.project import Project
from lockgate.state import StateStore
from lockgate.state.records import CheckRecord, StepInfo

_STEPS = 400
#: rates (fractions of rows or checks): changes below half a percentage point are noise
RATE_SETTINGS = Settings(abs_floor=0.001)


@dataclass(frozen=True)
class MetricVerdict:
    dataset: str
    metric: str
    value: float
    run_id: str
    history: int  # values before it
    verdict: Verdict


def metric_history(
    steps: Iterable[StepInfo], checks: Iterable[CheckRecord]
) -> dict[str, list[tuple[Point, str]]]:
    """Metric → chronological ``((finished_at, value), run_id)`` of the published steps."""
    by_step: dict[int, list[CheckRecord]] = {}
    for c in checks:
        by_step.setdefault(c.step_id, []).append(c)
    out: dict[str, list[tuple[Point, str]]] = {}

    def add(metric: str, step: StepInfo, value: float | None) -> None:
        if value is not None:
            at = step.finished_at or step.started_at
            out.setdefault(metric, []).append(((at, float(value)), step.run_id))

    for step in sorted(steps, key=lambda s: s.step_id):
        if step.status != "success":
            continue
        add("row_count", step, step.rows_out)
        add("rows_in", step, step.rows_in)
        if step.rows_in:
            add("quarantine_rate", step, (step.rows_quarantined or 0) / step.rows_in)
        results = by_step.get(step.step_id, [])
        if results:
            add("check_failure_rate", step, sum(not c.passed for c in results) / len(results))
        for c in results:
            if c.check_type == "not_null":
                add(f"null_rate({c.check_name})", step, c.fraction)
            elif c.observed is not None:
                add(f"observed({c.check_name})", step, c.observed)
    return out


def dataset_anomalies(
    project: Project, dataset: str, settings: Settings | None = None
) -> list[MetricVerdict]:
    """The newest value of each metric of ``dataset`` against the history before it."""
    project.dataset(dataset)
    with StateStore.open(project.state_url) as state:
        steps = state.dataset_steps(project.name, dataset, _STEPS)
        checks = state.check_history(project.name, dataset, _STEPS)
    out: list[MetricVerdict] = []
    for metric, series in sorted(metric_history(steps, checks).items()):
        (point, run_id) = series[-1]
        history = [p for p, _ in series[:-1]]
        rate = metric.endswith("_rate") or metric.startswith("null_rate(")
        verdict = detect(history, point, settings or (RATE_SETTINGS if rate else None))
        out.append(MetricVerdict(dataset, metric, point[1], run_id, len(history), verdict))
    return out
