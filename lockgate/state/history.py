"""The read queries of the state store: runs, one run in full, a dataset's steps, check
results and quality scores (internal to :mod:`lockgate.state`; :class:`StateStore` wraps
each in a read transaction, :mod:`lockgate.api` builds pages of them).

Every query is bounded by a limit (or a time window) and served by an index, so a page
stays cheap over a long history (10k runs): ``runs (project, seq)``, ``steps (project,
dataset, id)`` and ``(run_id)``, ``check_results (project, dataset, step_id)``,
``quality_scores (project, dataset, id)``, ``(run_id)`` and ``(project, created_at)``.
"""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lockgate.errors import UsageError
from lockgate.state import tables as t
from lockgate.state._convert import (
    attempt_info,
    check_record,
    from_row,
    run_info,
    status_value,
    step_info,
)
from lockgate.state.records import (
    AttemptInfo,
    CheckRecord,
    RunDetail,
    RunInfo,
    RunStatus,
    ScoreRecord,
    StepInfo,
)

_HEX = re.compile(r"^[0-9a-f]{1,32}$")


def list_runs(
    conn: Connection, project: str, limit: int, status: str | RunStatus | None = None
) -> list[RunInfo]:
    """Newest first."""
    q = sa.select(t.runs).where(t.runs.c.project == project)
    if status is not None:
        q = q.where(t.runs.c.status == status_value(status, RunStatus))
    q = q.order_by(t.runs.c.seq.desc()).limit(limit)
    return [run_info(r) for r in conn.execute(q).mappings()]


def find_run(conn: Connection, run_id: str, project: str | None) -> RunInfo | None:
    """The run ``run_id`` (or unique id prefix) names; :class:`UsageError` if a prefix
    matches several."""
    key = run_id.strip().lower()
    if not _HEX.match(key):
        return None
    c = t.runs.c
    # a prefix as a range of the primary key ('g' sorts after every hex digit)
    q = sa.select(t.runs).where(
        c.run_id == key if len(key) == 32 else c.run_id.between(key, key + "g")
    )
    if project is not None:
        # for a prefix, wrapped so the planner walks the key range, not the project's runs
        q = q.where((c.project if len(key) == 32 else sa.func.coalesce(c.project, "")) == project)
    rows = list(conn.execute(q.order_by(c.seq.desc()).limit(6)).mappings())
    if len(rows) > 1:
        ids = ", ".join(r["run_id"][:12] for r in rows[:5])
        raise UsageError(
            f"run id prefix {run_id!r} matches several runs: {ids}",
            hint="give more characters of the run id",
        )
    return run_info(rows[0]) if rows else None


def get_run(conn: Connection, run_id: str, project: str | None) -> RunDetail | None:
    """A run with its steps, their attempts and check results."""
    run = find_run(conn, run_id, project)
    if run is None:
        return None
    q = sa.select(t.steps).where(t.steps.c.run_id == run.run_id).order_by(t.steps.c.id)
    steps = [step_info(r) for r in conn.execute(q).mappings()]
    attempts: dict[int, list[AttemptInfo]] = {}
    checks: dict[int, list[CheckRecord]] = {}
    if steps:
        a = t.attempts.c
        step_ids = [s.step_id for s in steps]
        for r in conn.execute(
            sa.select(t.attempts)
            .where(a.step_id.in_(step_ids))
            .order_by(a.step_id, a.attempt, a.id)
        ).mappings():
            attempts.setdefault(r["step_id"], []).append(attempt_info(r))
        cq = _checks().where(t.check_results.c.step_id.in_(step_ids))
        for r in conn.execute(cq.order_by(t.check_results.c.id)).mappings():
            checks.setdefault(r["step_id"], []).append(check_record(r))
    return RunDetail(run=run, steps=steps, attempts=attempts, checks=checks)


def dataset_steps(
    conn: Connection, project: str, dataset: str, limit: int, project_id: str | None
) -> list[StepInfo]:
    """The dataset's most recent steps, newest first (only of runs under ``project_id``)."""
    q = sa.select(t.steps).where(t.steps.c.project == project, t.steps.c.dataset == dataset)
    if project_id is not None:
        q = q.join(t.runs, t.runs.c.run_id == t.steps.c.run_id).where(
            t.runs.c.project_id == project_id
        )
    q = q.order_by(t.steps.c.id.desc()).limit(limit)
    return [step_info(r) for r in conn.execute(q).mappings()]


def _checks() -> sa.Select[tuple[object, ...]]:
    """Check results with the ``finished_at`` of the step that ran them."""
    return sa.select(t.check_results, t.steps.c.finished_at).join(
        t.steps, t.steps.c.id == t.check_results.c.step_id
    )


def check_history(
    conn: Connection, project: str, dataset: str, limit: int, check_name: str | None
) -> list[CheckRecord]:
    """Check results of the dataset's ``limit`` most recent steps that have any (only
    ``check_name``'s if given): newest step first, then in recorded order."""
    c = t.check_results.c
    where = [c.project == project, c.dataset == dataset]
    if check_name is not None:
        where.append(c.check_name == check_name)
    recent = (
        sa.select(c.step_id)
        .where(*where)
        .group_by(c.step_id)
        .order_by(c.step_id.desc())
        .limit(limit)
        .subquery()
    )
    q = _checks().where(*where, c.step_id.in_(sa.select(recent.c.step_id)))
    return [check_record(r) for r in conn.execute(q.order_by(c.step_id.desc(), c.id)).mappings()]


def check_values(
    conn: Connection, project: str, dataset: str, check_name: str, limit: int
) -> list[tuple[datetime, float]]:
    """The observed values of ``check_name`` in the dataset's ``limit`` most recent steps
    that *published* (status success), oldest first: an anomaly check's baseline."""
    c, s = t.check_results.c, t.steps.c
    q = (
        sa.select(s.finished_at, c.observed)
        .join(t.steps, s.id == c.step_id)
        .where(
            c.project == project,
            c.dataset == dataset,
            c.check_name == check_name,
            s.status == "success",
            c.observed.is_not(None),
        )
        .order_by(c.step_id.desc())
        .limit(limit)
    )
    rows = [(r[0], float(r[1])) for r in conn.execute(q) if r[0] is not None]
    return rows[::-1]


def score_history(
    conn: Connection,
    project: str,
    dataset: str | None,
    limit: int | None,
    since: datetime | None = None,
) -> list[ScoreRecord]:
    """Scores of ``dataset``'s ``limit`` most recent scored runs — or, without a dataset,
    of the project's ``limit`` most recent runs — recorded at or after ``since``: newest
    run first, then in recorded order."""
    c = t.quality_scores.c
    where = [c.project == project]
    if since is not None:
        where.append(c.created_at >= since)
    if dataset is None:
        r = t.runs.c
        q = sa.select(t.quality_scores).join(t.runs, r.run_id == c.run_id)
        if limit is not None:
            newest = sa.select(r.run_id).where(r.project == project)
            where.append(c.run_id.in_(newest.order_by(r.seq.desc()).limit(limit)))
        q = q.where(*where).order_by(r.seq.desc(), c.id)
    elif limit is not None:
        # the runs in order of first appearance walking ids down (= ordered by their newest
        # id), found without grouping the dataset's whole score history
        where.append(c.dataset == dataset)
        newest = sa.select(c.run_id).where(*where).order_by(c.id.desc())
        runs = _first_distinct(conn, newest, limit)
        if not runs:
            return []
        q = sa.select(t.quality_scores).where(*where, c.run_id.in_(runs)).order_by(c.id)
        rank = {r: i for i, r in enumerate(runs)}
        rows = sorted(conn.execute(q).mappings(), key=lambda r: rank[r["run_id"]])
        return [from_row(ScoreRecord, r) for r in rows]
    else:
        where.append(c.dataset == dataset)
        last = sa.func.max(c.id)
        recent = sa.select(c.run_id, last.label("last_id")).where(*where).group_by(c.run_id)
        sub = recent.order_by(last.desc()).limit(limit).subquery()
        q = sa.select(t.quality_scores).join(sub, sub.c.run_id == c.run_id)
        q = q.where(*where).order_by(sub.c.last_id.desc(), c.id)
    return [from_row(ScoreRecord, r) for r in conn.execute(q).mappings()]


def _first_distinct(conn: Connection, q: sa.Select[tuple[object]], n: int) -> list[str]:
    """The first ``n`` distinct values of ``q``'s one column, reading ever longer prefixes."""
    k = max(8 * n, 64)
    while True:
        got = [str(v) for v in conn.execute(q.limit(k)).scalars()]
        seen = list(dict.fromkeys(got))
        if len(seen) >= n or len(got) < k:
            return seen[:n]
        k *= 4
