"""Retention: delete run history older than a horizon, keeping daily aggregates.

``prune(store, project, days=N)`` deletes the runs that *started* more than ``N`` days ago
(finished ones only) with their steps, attempts, check results and quality scores. Before
anything is deleted:

- quality scores are rolled up into ``lockgate_daily_scores`` (the overview's chart);
- check results are added to ``lockgate_daily_checks`` (per dataset, check and UTC day: how
  many results, how many failed, the sum and count of observed values), so a check's trend
  survives its rows.

Never deleted: each dataset's newest published (success/noop) step and its run — the run loop
reads its definition hash and source resume token from it —, runs still running, schema
versions, watermarks, alert incidents and the append-only audit log. Work goes in batches of
runs, one transaction each, so a long history is pruned without one huge transaction and a
crash leaves a consistent store (a batch is aggregated and deleted atomically).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from lockgate.state import tables as t
from lockgate.state.store import StateStore

BATCH_RUNS = 500


@dataclass
class PruneResult:
    cutoff: datetime
    runs: int = 0
    steps: int = 0
    attempts: int = 0
    check_results: int = 0
    scores: int = 0
    kept_runs: list[str] = field(default_factory=list)  # old, but hold a newest published step

    def to_dict(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "runs": self.runs,
            "steps": self.steps,
            "attempts": self.attempts,
            "check_results": self.check_results,
            "scores": self.scores,
            "kept_runs": len(self.kept_runs),
        }


def prune(
    store: StateStore,
    project: str,
    *,
    days: int,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Delete ``project``'s run history older than ``days`` days (see the module)."""
    from lockgate.state.dashboard import rollup_daily_scores

    if days < 1:
        raise ValueError("retention days must be >= 1")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    out = PruneResult(cutoff)
    keep = _newest_published_runs(store, project)
    r = t.runs.c
    old = (
        sa.select(r.run_id)
        .where(r.project == project, r.started_at < cutoff, r.status != "running")
        .order_by(r.seq)
    )
    with store._read() as conn:
        ids = [row[0] for row in conn.execute(old)]
    out.kept_runs = [i for i in ids if i in keep]
    ids = [i for i in ids if i not in keep]
    if dry_run:
        out.runs = len(ids)
        return out
    rollup_daily_scores(store)  # every score about to go is in the daily table first
    for k in range(0, len(ids), BATCH_RUNS):
        batch = ids[k : k + BATCH_RUNS]
        with store._tx() as conn:
            _aggregate_checks(conn, store, batch)
            _delete(conn, batch, out)
    return out


def _newest_published_runs(store: StateStore, project: str) -> set[str]:
    s = t.steps.c
    newest = (
        sa.select(sa.func.max(s.id).label("id"))
        .where(s.project == project, s.status.in_(("success", "noop")))
        .group_by(s.dataset)
        .subquery()
    )
    q = sa.select(s.run_id).where(s.id.in_(sa.select(newest.c.id)))
    with store._read() as conn:
        return {row[0] for row in conn.execute(q)}


def _aggregate_checks(conn: Connection, store: StateStore, run_ids: Sequence[str]) -> None:
    c, s = t.check_results.c, t.steps.c
    q = (
        sa.select(c.project, c.dataset, c.check_name, c.passed, c.observed, s.finished_at)
        .join(t.steps, s.id == c.step_id)
        .where(c.run_id.in_(run_ids))
    )
    acc: dict[tuple[str, str, str, str], list[float]] = {}
    for row in conn.execute(q):
        at = row.finished_at
        day = "unknown" if at is None else _utc(at).strftime("%Y-%m-%d")
        a = acc.setdefault((row.project, row.dataset, row.check_name, day), [0, 0, 0.0, 0])
        a[0] += 1
        a[1] += 0 if row.passed else 1
        if row.observed is not None:
            a[2] += float(row.observed)
            a[3] += 1
    if not acc:
        return
    rows = [
        {
            "project": p,
            "dataset": d,
            "check_name": n,
            "day": day,
            "results": int(v[0]),
            "failed": int(v[1]),
            "observed_total": v[2] if v[3] else None,
            "observed_n": int(v[3]),
        }
        for (p, d, n, day), v in acc.items()
    ]
    dc = t.daily_checks
    ins = store._insert(dc).values(rows)
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=["project", "dataset", "check_name", "day"],
            set_={
                "results": dc.c.results + ins.excluded.results,
                "failed": dc.c.failed + ins.excluded.failed,
                "observed_total": sa.func.coalesce(dc.c.observed_total, 0.0)
                + sa.func.coalesce(ins.excluded.observed_total, 0.0),
                "observed_n": dc.c.observed_n + ins.excluded.observed_n,
            },
        )
    )


def _delete(conn: Connection, run_ids: Sequence[str], out: PruneResult) -> None:
    step_ids = sa.select(t.steps.c.id).where(t.steps.c.run_id.in_(run_ids))
    out.attempts += conn.execute(
        sa.delete(t.attempts).where(t.attempts.c.step_id.in_(step_ids))
    ).rowcount
    out.check_results += conn.execute(
        sa.delete(t.check_results).where(t.check_results.c.run_id.in_(run_ids))
    ).rowcount
    out.scores += conn.execute(
        sa.delete(t.quality_scores).where(t.quality_scores.c.run_id.in_(run_ids))
    ).rowcount
    out.steps += conn.execute(sa.delete(t.steps).where(t.steps.c.run_id.in_(run_ids))).rowcount
    out.runs += conn.execute(sa.delete(t.runs).where(t.runs.c.run_id.in_(run_ids))).rowcount


def daily_checks(
    store: StateStore, project: str, dataset: str, check_name: str | None = None
) -> list[dict[str, object]]:
    """The daily aggregates retention kept of ``dataset``'s pruned check results, oldest
    day first: ``{check_name, day, results, failed, pass_rate, observed_mean}``."""
    c = t.daily_checks.c
    q = sa.select(t.daily_checks).where(c.project == project, c.dataset == dataset)
    if check_name is not None:
        q = q.where(c.check_name == check_name)
    with store._read() as conn:
        rows = [dict(r) for r in conn.execute(q.order_by(c.day, c.check_name)).mappings()]
    return [
        {
            "check_name": r["check_name"],
            "day": r["day"],
            "results": r["results"],
            "failed": r["failed"],
            "pass_rate": 1 - r["failed"] / r["results"] if r["results"] else None,
            "observed_mean": r["observed_total"] / r["observed_n"] if r["observed_n"] else None,
        }
        for r in rows
    ]


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
