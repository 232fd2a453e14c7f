"""What each page shows, as plain data: built on :mod:`lockgate.api` and the state store's
read methods (:mod:`lockgate.state.dashboard` for the dashboard's own). No SQL here."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lockgate.state import RunDetail, RunInfo, StateStore
from lockgate.state import dashboard as dash

if TYPE_CHECKING:
    from lockgate.project import Project

#: step statuses that put a dataset "at risk" on the overview
_BAD = {"failed", "blocked", "upstream_failed"}


@dataclass(frozen=True)
class Risk:
    dataset: str
    reasons: list[str]


def run_rows(runs: Sequence[RunInfo]) -> list[dict[str, Any]]:
    """The runs table: status, when, how long, rows out/quarantined/skipped."""
    out = []
    for r in runs:
        s = r.summary or {}
        out.append(
            {
                "run_id": r.run_id,
                "seq": r.seq,
                "status": r.status,
                "started_at": r.started_at,
                "duration_s": r.duration_s,
                "selection": r.selection,
                "steps": s.get("steps"),
                "rows_out": s.get("rows_out"),
                "rows_quarantined": s.get("rows_quarantined"),
                "rows_skipped": s.get("rows_skipped"),
            }
        )
    return out


def at_risk(
    project: Project, state: StateStore, datasets: Sequence[str], now: datetime | None = None
) -> list[Risk]:
    """Datasets whose last step failed or was blocked, whose last checks failed, that are
    stale beyond their freshness SLA, or whose last step recorded schema drift."""
    from lockgate.project.models import parse_duration

    now = now or datetime.now(UTC)
    name = project.config.name
    latest = dash.latest_steps(state, name, datasets)
    checks = dash.step_checks(state, [s.step_id for s in latest.values()])
    risks = []
    for ds in datasets:
        step = latest.get(ds)
        reasons: list[str] = []
        if step is None:
            reasons.append("never run")
        else:
            if step.status in _BAD:
                reasons.append(f"last step {step.status}")
            results = checks.get(step.step_id, [])
            failing = [c.check_name for c in results if not c.passed and c.check_type != "anomaly"]
            if failing:
                reasons.append("failing checks: " + ", ".join(failing[:5]))
            reasons += [_anomaly_reason(c) for c in results if c.check_type == "anomaly"]
            reasons = [r for r in reasons if r]
            versions = dash.schema_versions(state, name, ds, limit=1)
            if versions and versions[0]["drift"] and versions[0]["run_id"] == step.run_id:
                from lockgate.lineage.drift import describe

                changes = describe(versions[0]["drift"])
                reasons.append(
                    "schema drift in the last run"
                    + (": " + "; ".join(changes[:3]) if changes else "")
                )
            reasons += volume_anomalies(state, name, ds, step.step_id)
        sla = project.datasets[ds].freshness_sla
        last_ok = step.finished_at if step is not None and step.status == "success" else None
        if sla and last_ok is not None and now - last_ok > parse_duration(sla):
            reasons.append(f"stale: last published {_ago(now - last_ok)} ago (SLA {sla})")
        if reasons:
            risks.append(Risk(ds, reasons))
    return risks


def _anomaly_reason(c: Any) -> str:
    """A failing anomaly check, with its value and expected band."""
    if c.passed:
        return ""
    band = c.expected or {}
    where = ""
    if band.get("low") is not None and c.observed is not None:
        where = f" {c.observed:.6g} outside [{band['low']:.6g}, {band['high']:.6g}]"
    return f"anomaly: {c.check_name}{where}"


#: published steps the overview's volume/quarantine anomaly test looks back on
_VOLUME_STEPS = 60


_VERDICTS: dict[tuple[str, str, str, int], list[str]] = {}


def volume_anomalies(state: StateStore, project: str, dataset: str, step_id: int) -> list[str]:
    """The overview's anomaly signal beyond declared anomaly checks: row count, rows read and
    quarantine rate of the dataset's newest published step against its last published steps
    (robust baseline). Cached per newest step, so a page view recomputes only after a run."""
    key = (state.url, project, dataset, step_id)
    hit = _VERDICTS.get(key)
    if hit is not None:
        return list(hit)
    from lockgate.anomaly.detect import detect
    from lockgate.anomaly.history import RATE_SETTINGS, metric_history

    steps = state.dataset_steps(project, dataset, _VOLUME_STEPS)
    out = []
    for metric, series in sorted(metric_history(steps, []).items()):
        if len(series) < 2:
            continue
        (point, _run), history = series[-1], [p for p, _ in series[:-1]]
        v = detect(history, point, RATE_SETTINGS if metric.endswith("_rate") else None)
        if v.anomalous:
            out.append(f"anomaly: {metric} {point[1]:.6g} ({v.reason})")
    if len(_VERDICTS) > 4096:
        _VERDICTS.clear()
    _VERDICTS[key] = out
    return list(out)


def _ago(d: timedelta) -> str:
    s = int(d.total_seconds())
    if s >= 86400:
        return f"{s // 86400}d"
    if s >= 3600:
        return f"{s // 3600}h"
    return f"{s // 60}m"


def score_series(state: StateStore, project: str, dataset: str | None) -> dict[str, Any]:
    """Daily score per dimension for a uPlot chart: ``{"x": [epoch s], "series": {dim: [..]}}``
    (None where a dimension has no score that day)."""
    dash.rollup_daily_scores(state)
    rows = dash.daily_scores(state, project, dataset)
    days = sorted({r["day"] for r in rows})
    index = {d: i for i, d in enumerate(days)}
    series: dict[str, list[float | None]] = {}
    for r in rows:
        col = series.setdefault(str(r["dimension"]), [None] * len(days))
        col[index[r["day"]]] = round(float(r["score"]), 4)
    x = [int(datetime.fromisoformat(d).replace(tzinfo=UTC).timestamp()) for d in days]
    return {"x": x, "days": days, "series": series}


def gantt(detail: RunDetail) -> list[dict[str, Any]]:
    """Each step's bar: offset and width in percent of the run's span."""
    steps = detail.steps
    if not steps:
        return []
    t0 = min(s.started_at for s in steps)
    t1 = max((s.finished_at or s.started_at) for s in steps)
    span = max((t1 - t0).total_seconds(), 1e-6)
    bars = []
    for s in steps:
        start = (s.started_at - t0).total_seconds()
        length = ((s.finished_at or s.started_at) - s.started_at).total_seconds()
        bars.append(
            {
                "dataset": s.dataset,
                "status": s.status,
                "left": round(100 * start / span, 2),
                "width": max(round(100 * length / span, 2), 0.5),
                "seconds": length,
            }
        )
    return bars


def replay_command(run: RunInfo) -> str:
    """The command that runs the same selection again."""
    args = run.args or {}
    parts = ["lockgate", "run"]
    selected = run.selection.split() if run.selection and run.selection != "*" else []
    for name in selected:
        parts += ["--select", str(name)]
    if args.get("full_refresh"):
        parts.append("--full-refresh")
    return shlex.join(parts)


def check_trends(checks: Sequence[Any]) -> list[dict[str, Any]]:
    """Group a dataset's check history (newest first) by check: the latest result and the
    observed values/failing fractions oldest first for a chart."""
    by: dict[str, list[Any]] = {}
    for c in checks:
        by.setdefault(c.check_name, []).append(c)
    out = []
    for name, hist in by.items():
        hist = list(reversed(hist))
        out.append(
            {
                "name": name,
                "latest": hist[-1],
                "passed": [bool(c.passed) for c in hist],
                "values": [_trend_value(c) for c in hist],
            }
        )
    return out


def _trend_value(c: Any) -> float | None:
    """What a check's chart follows: its observed value, else its failing rows."""
    if c.observed is not None:
        return float(c.observed)
    return None if c.failing_rows is None else float(c.failing_rows)


def drifted(versions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Schema versions with the columns added/removed/changed versus the previous one."""
    out = []
    for i, v in enumerate(versions):
        cols = {c["name"]: c["type"] for c in (v.get("schema") or [])}
        prev = versions[i + 1] if i + 1 < len(versions) else None
        before = {c["name"]: c["type"] for c in (prev.get("schema") or [])} if prev else {}
        out.append(
            {
                **v,
                "columns": cols,
                "added": sorted(set(cols) - set(before)) if prev else [],
                "removed": sorted(set(before) - set(cols)),
                "changed": sorted(k for k in cols if k in before and before[k] != cols[k]),
            }
        )
    return out
