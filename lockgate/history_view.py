"""Run and quality history as data: what ``lockgate runs``, ``lockgate quality``, notebooks
and a dashboard read (``lockgate.api.runs``, ``run_detail``, ``check_history``, ``scores``,
``quality``).

Lists are newest first and bounded (``limit``); the state store serves each from an index
(see :mod:`lockgate.state.history`), so they stay cheap over a long history. Time series
are Arrow tables (one row per check result or score), ready for a chart or a DataFrame.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockgate._project_ref import as_project
from lockgate.dataset_view import SCORE_DEFINITION, SCORE_DOC
from lockgate.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from lockgate.project import Project
    from lockgate.state import RunDetail, RunInfo, StateStore
    from lockgate.state.records import ScoreRecord

#: the columns of :func:`check_history`'s table and their Arrow types
CHECK_COLUMNS = (
    ("run_id", "string"),
    ("step_id", "int64"),
    ("finished_at", "timestamp"),
    ("dataset", "string"),
    ("check_name", "string"),
    ("check_type", "string"),
    ("dimension", "string"),
    ("severity", "string"),
    ("passed", "bool_"),
    ("failing_rows", "int64"),
    ("fraction", "float64"),
    ("observed", "float64"),
    ("seconds", "float64"),
    ("message", "string"),
)

#: the columns of :func:`scores`'s table and their Arrow types
SCORE_COLUMNS = (
    ("run_id", "string"),
    ("dataset", "string"),
    ("dimension", "string"),
    ("score", "float64"),
    ("created_at", "timestamp"),
)


def _table(records: Sequence[object], columns: Sequence[tuple[str, str]]) -> pa.Table:
    """Records (dataclasses) as an Arrow table of ``columns`` (timestamps: UTC, µs)."""
    import pyarrow as pa

    schema = pa.schema(
        [
            (n, pa.timestamp("us", tz="UTC") if k == "timestamp" else getattr(pa, k)())
            for n, k in columns
        ]
    )
    return pa.Table.from_pylist(
        [{n: getattr(r, n) for n, _ in columns} for r in records], schema=schema
    )


def _state(project: Project) -> StateStore:
    from lockgate.state import StateStore

    return StateStore.open(project.state_url)


def _known(project: Project | str | Path, dataset: str | None) -> Project:
    """The project, having checked ``dataset`` (unknown: ConfigError with "did you mean")."""
    p = as_project(project)
    if dataset is not None:
        p.dataset(dataset)
    return p


def runs(
    project: Project | str | Path = ".", *, limit: int = 20, status: str | None = None
) -> list[RunInfo]:
    """Run history, newest first (only runs with ``status``, e.g. ``"failed"``, if given):
    id, seq, status, times, duration, selection, ``summary`` (steps, rows published and
    quarantined), error. What ``lockgate runs`` lists."""
    p = as_project(project)
    with _state(p) as state:
        return state.list_runs(p.config.name, limit=limit, status=status)


def run_detail(
    project: Project | str | Path, run_id: str, *, show_pii: bool = False
) -> dict[str, Any]:
    """One run (id or unique id prefix) as one mapping: its fields, then ``steps`` (rows in/
    out/quarantined/skipped, pinned ``input_versions``, versions written, reason), each with
    its ``attempt_log`` and ``checks`` (observed values, failing rows, samples). What
    ``lockgate runs RUN_ID`` renders; :class:`UsageError` if no run of the project matches.
    The samples of personal columns are masked unless ``show_pii`` (:mod:`lockgate.pii`)."""
    p = as_project(project)
    with _state(p) as state:
        detail = state.get_run(run_id, project=p.config.name)
    if detail is None:
        raise UsageError(
            f"no run '{run_id}' in project '{p.config.name}'",
            hint="`lockgate runs` lists run ids; give the id or a unique prefix of it",
        )
    if not show_pii:
        from lockgate.pii import mask_recorded

        checks = {k: mask_recorded(p, v) for k, v in detail.checks.items()}
        detail = dataclasses.replace(detail, checks=checks)
    return flatten_run(detail)


def flatten_run(detail: RunDetail) -> dict[str, Any]:
    """A :class:`~lockgate.state.RunDetail` as one mapping (see :func:`run_detail`)."""
    out: dict[str, Any] = dataclasses.asdict(detail.run)
    steps = []
    for step in detail.steps:
        d = dataclasses.asdict(step)
        d["attempt_log"] = [dataclasses.asdict(a) for a in detail.attempts.get(step.step_id, [])]
        d["checks"] = [dataclasses.asdict(c) for c in detail.checks.get(step.step_id, [])]
        steps.append(d)
    out["steps"] = steps
    return out


def check_history(
    project: Project | str | Path, dataset: str, *, check: str | None = None, limit: int = 20
) -> pa.Table:
    """A dataset's check results over its ``limit`` most recent steps that ran checks (only
    ``check``'s if given), newest first: an Arrow table, one row per result
    (:data:`CHECK_COLUMNS`: run, step, ``finished_at``, check name/type/dimension/severity,
    passed, failing rows, fraction, observed value, seconds, message)."""
    p = _known(project, dataset)
    with _state(p) as state:
        records = state.check_history(p.config.name, dataset, limit, check_name=check)
    defined = {c.check_name for c in p.datasets[dataset].checks}
    if check is not None and not records and check not in defined:
        from lockgate._suggest import did_you_mean

        raise UsageError(
            f"dataset '{dataset}' has no check '{check}'",
            hint=did_you_mean(check, defined) or f"see `lockgate show {dataset}`",
        )
    return _table(records, CHECK_COLUMNS)


def scores(
    project: Project | str | Path,
    dataset: str | None = None,
    *,
    since: datetime | str | None = None,
    limit: int | None = 100,
) -> pa.Table:
    """Quality scores over time, newest run first: an Arrow table (:data:`SCORE_COLUMNS`:
    run_id, dataset, dimension — ``overall`` included —, score in [0, 1], created_at) over
    ``dataset``'s ``limit`` most recent scored runs, or the project's ``limit`` most recent
    runs; only scores recorded at or after ``since`` (a datetime, ISO 8601 text, or a
    duration back from now: ``"7d"``, ``"12h"``)."""
    p = _known(project, dataset)
    with _state(p) as state:
        records = state.score_history(p.config.name, dataset, limit, since=_since(since))
    return _table(records, SCORE_COLUMNS)


def quality(project: Project | str | Path, dataset: str, *, limit: int = 20) -> dict[str, Any]:
    """What ``lockgate quality`` renders: ``runs`` = the scores of ``dataset``'s ``limit``
    most recent scored runs, oldest first (``run_id``, ``created_at``, ``scores`` by
    dimension and ``overall``; see :func:`group_scores`), and what a score means
    (``definition``, ``docs``)."""
    p = _known(project, dataset)
    with _state(p) as state:
        records = state.score_history(p.config.name, dataset, limit)
    return {
        "dataset": dataset,
        "definition": SCORE_DEFINITION,
        "docs": SCORE_DOC,
        "runs": group_scores(records),
    }


def group_scores(records: Sequence[ScoreRecord]) -> list[dict[str, Any]]:
    """Score records (newest run first) → one dict per run, oldest first:
    ``{"run_id", "created_at", "scores": {dimension: score, ..., "overall": score}}``."""
    grouped: dict[str, dict[str, Any]] = {}
    for r in records:
        run = grouped.setdefault(
            r.run_id, {"run_id": r.run_id, "created_at": r.created_at, "scores": {}}
        )
        run["scores"][r.dimension] = r.score
        run["created_at"] = max(run["created_at"], r.created_at)
    return list(reversed(grouped.values()))


def _since(since: datetime | str | None) -> datetime | None:
    """``since`` as an aware UTC datetime: a datetime (naive = UTC), ISO text, or a
    duration back from now."""
    if since is None or isinstance(since, datetime):
        return since if since is None or since.tzinfo else since.replace(tzinfo=UTC)
    from lockgate._duration import parse_duration

    try:
        return datetime.now(UTC) - parse_duration(since)
    except ValueError:
        pass
    try:
        return _since(datetime.fromisoformat(since))
    except ValueError:
        raise UsageError(
            f"since={since!r} is neither a time nor a duration",
            hint="give an ISO 8601 time ('2026-01-31T00:00') or a duration ('7d', '12h')",
        ) from None
