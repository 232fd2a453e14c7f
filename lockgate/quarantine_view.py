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

from lockgate._project_ref import with_dataset
from lockgate.errors import UsageError

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
    import duckdb

    from lockgate._suggest import did_you_mean
    from lockgate.quality.explain import explain_failures
    from lockgate.storage import DeltaStore

    project = with_dataset(project, dataset)
    defined = {c.check_name: c for c in project.datasets[dataset].checks}
    store = DeltaStore(project.warehouse_path)
    qname = dataset + QUARANTINE_SUFFIX
    view = QuarantineView(dataset, "all" if include_history else "current")
    con = duckdb.connect()
    present: list[str] = []
    if store.exists(qname):
        con.register("q", store.arrow_dataset(qname))
        present = [
            str(r[0])
            for r in con.execute(
                "SELECT DISTINCT unnest(_lg_failed_checks) FROM q ORDER BY 1"
            ).fetchall()
        ]
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
    where: list[str] = []
    params: list[Any] = []
    if run:
        where.append("starts_with(_lg_run_id, ?)")
        params.append(run)
    if check:
        where.append("list_contains(_lg_failed_checks, ?)")
        params.append(check)
    superseded = sorted(_superseded_runs(store, dataset, qname))
    hidden_where = [*where]
    if superseded and not include_history:
        where.append("NOT list_contains(?, _lg_run_id)")
        params.append(superseded)
    cond = (" WHERE " + " AND ".join(where)) if where else ""
    view.total = con.execute("SELECT count(*) FROM q" + cond, params).fetchall()[0][0]
    if superseded and not include_history:
        hcond = " WHERE " + " AND ".join([*hidden_where, "list_contains(?, _lg_run_id)"])
        hparams = [*params[:-1], superseded]
        hidden = con.execute("SELECT count(*) FROM q" + hcond, hparams).fetchall()[0][0]
        view.superseded_rows_hidden = int(hidden)
    by_check = con.execute(
        "SELECT c, count(*) FROM (SELECT unnest(_lg_failed_checks) AS c FROM q"
        + cond
        + ") GROUP BY c ORDER BY 2 DESC, 1",
        params,
    ).fetchall()
    view.by_check = {str(c): int(n) for c, n in by_check}
    table = con.sql(
        "SELECT * FROM q" + cond + " ORDER BY _lg_quarantined_at DESC, _lg_run_id LIMIT ?",
        params=[*params, limit],
    ).to_arrow_table()
    view.rows = table.to_pylist()
    for r in view.rows:
        r["_lg_why"] = [
            {"check": name, "reason": why}
            for name, why in explain_failures(r.get("_lg_failed_checks") or [], r, defined)
        ]
    return view


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
