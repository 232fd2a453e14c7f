"""The quarantine of a dataset, as data: what ``lockgate quarantine``, notebooks and a
dashboard read (``lockgate.api.quarantine``).

By default only rows of the *current* data count: rows quarantined by a run whose batch was
later replaced — the dataset was overwritten (``write.mode: overwrite`` or a
``--full-refresh``) by a later run — are history, included with ``include_history=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from lockgate._project_ref import with_dataset
from lockgate.errors import UsageError
from lockgate.sql import col, literal, table_ref

if TYPE_CHECKING:
    from lockgate.engine.base import Engine

if TYPE_CHECKING:
    from lockgate.project import Project

QUARANTINE_SUFFIX = "__quarantine"


@dataclass
class QuarantineView:
    """One page of a dataset's quarantine (newest first) and its counts."""

    dataset: str
    scope: str  # "current" or "all"
    total: int = 0  # rows in scope (after the run/check filters)
    superseded_rows_hidden: int = 0  # rows of replaced batches left out of "current"
    by_check: dict[str, int] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)  # each with ``_lg_why``
    exists: bool = False  # the dataset has a quarantine table at all

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "scope": self.scope,
            "total": self.total,
            "superseded_rows_hidden": self.superseded_rows_hidden,
            "by_check": self.by_check,
            "rows": self.rows,
        }


def quarantine(
    project: Project | str | Path,
    dataset: str,
    *,
    run: str | None = None,
    check: str | None = None,
    include_history: bool = False,
    limit: int = 20,
) -> QuarantineView:
    """A dataset's quarantined rows: the newest ``limit`` (optionally of one run, by id
    prefix, or failing one check), each with ``_lg_why`` = [{check, reason}], and their
    counts by check; rows of batches a later run replaced only with ``include_history``.
    The data behind ``lockgate quarantine``. Unknown datasets and checks are
    :class:`UsageError` with a did-you-mean."""
    from lockgate._suggest import did_you_mean
    from lockgate.engine.session import DuckDBEngine
    from lockgate.quality.explain import explain_failures
    from lockgate.storage import DeltaStore

    project = with_dataset(project, dataset)
    defined = {c.check_name: c for c in project.datasets[dataset].checks}
    store = DeltaStore(project.warehouse_path)
    qname = dataset + QUARANTINE_SUFFIX
    view = QuarantineView(dataset, "all" if include_history else "current")
    with DuckDBEngine() as eng:
        present: list[str] = []
        if store.exists(qname):
            eng.register_arrow("q", store.arrow_dataset(qname))
            names = exp.Unnest(expressions=[col(FAILED)])
            q = exp.select(names).distinct().from_(table_ref("q")).order_by("1")
            present = [str(r[0]) for r in eng.execute(q).fetchall()]
        if check is not None:
            known = sorted({*defined, "parse_error", *present})
            if check not in known:
                raise UsageError(
                    f"dataset '{dataset}' has no check '{check}'",
                    hint=did_you_mean(check, known) or f"its checks: {', '.join(known)}",
                )
        if not store.exists(qname):
            return view
        view.exists = True
        superseded = sorted(_superseded_runs(store, dataset, qname))
        _fill(eng, view, _filters(run, check), superseded, include_history, limit)
    for r in view.rows:
        r["_lg_why"] = [
            {"check": name, "reason": why}
            for name, why in explain_failures(r.get("_lg_failed_checks") or [], r, defined)
        ]
    return view


FAILED = "_lg_failed_checks"


def _filters(run: str | None, check: str | None) -> list[exp.Expr]:
    where: list[exp.Expr] = []
    if run:
        where.append(exp.func("starts_with", col("_lg_run_id"), literal(run)))
    if check:
        where.append(exp.Anonymous(this="list_contains", expressions=[col(FAILED), literal(check)]))
    return where


def _in_runs(runs: list[str]) -> exp.Expr:
    array = exp.Array(expressions=[literal(r) for r in runs])
    return exp.Anonymous(this="list_contains", expressions=[array, col("_lg_run_id")])


def _fill(
    eng: Engine,
    view: QuarantineView,
    where: list[exp.Expr],
    superseded: list[str],
    include_history: bool,
    limit: int,
) -> None:
    """Counts and the newest ``limit`` rows of ``q`` matching ``where`` (and, for the current
    scope, not of a superseded run) into ``view``."""
    if superseded and not include_history:
        hidden = exp.select(exp.Count(this=exp.Star())).from_(table_ref("q"))
        hidden = hidden.where(*where, _in_runs(superseded))
        view.superseded_rows_hidden = int(eng.execute(hidden).fetchall()[0][0])
        where = [*where, exp.Not(this=_in_runs(superseded))]
    total = exp.select(exp.Count(this=exp.Star())).from_(table_ref("q")).where(*where)
    view.total = eng.execute(total).fetchall()[0][0]
    unnest = exp.select(exp.alias_(exp.Unnest(expressions=[col(FAILED)]), "c"))
    inner = unnest.from_(table_ref("q")).where(*where).subquery()
    by = exp.select("c", exp.Count(this=exp.Star())).from_(inner).group_by("c")
    by_check = eng.execute(by.order_by(exp.Ordered(this=exp.Literal.number(2), desc=True), "c"))
    view.by_check = {str(c): int(n) for c, n in by_check.fetchall()}
    rows = exp.select(exp.Star()).from_(table_ref("q")).where(*where)
    rows = rows.order_by(exp.Ordered(this=col("_lg_quarantined_at"), desc=True), col("_lg_run_id"))
    view.rows = eng.arrow(rows.limit(limit)).to_pylist()


def _superseded_runs(store: Any, dataset: str, qname: str) -> set[str]:
    """Runs whose quarantined rows belong to a batch a later run replaced: quarantine
    commits older (by run sequence) than the dataset's newest overwrite commit."""
    last_overwrite = max(
        (
            int(h["lockgate"]["run_seq"])
            for h in store.history(dataset, limit=None)
            if h["lockgate"].get("mode") == "overwrite" and "run_seq" in h["lockgate"]
        ),
        default=None,
    )
    if last_overwrite is None:
        return set()
    return {
        str(h["lockgate"]["run_id"])
        for h in store.history(qname, limit=None)
        if "run_seq" in h["lockgate"] and int(h["lockgate"]["run_seq"]) < last_overwrite
    }
