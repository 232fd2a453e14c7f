"""The quarantine of a dataset, as data: what ``lockgate quarantine``, notebooks and a
dashboard read (``lockgate.api.quarantine``).

By default only rows of the *current* data count: rows quarantined by a run whose batch was
later replaced — the dataset was overwritten (``write.mode: overwrite`` or a
``--full-refresh``) by a later run — are history, included with ``include_history=True``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from lockgate.errors import UsageError

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


class _Scope:
    """A dataset's quarantine opened once for one answer: a DuckDB cursor with view ``q``
    (the table, with each row's data file and row number when ``keyed``), the filters as
    SQL with parameters, and the runs whose batches a later run replaced."""

    def __init__(self, project: Any, dataset: str, check: str | None, keyed: bool) -> None:
        from lockgate._suggest import did_you_mean
        from lockgate.storage import DeltaStore

        if dataset not in project.datasets:
            raise UsageError(
                f"unknown dataset '{dataset}'",
                hint=did_you_mean(dataset, project.datasets) or "see `lockgate validate`",
            )
        self.defined = {c.check_name: c for c in project.datasets[dataset].checks}
        self.store = DeltaStore(project.warehouse_path)
        self.qname = dataset + QUARANTINE_SUFFIX
        self.exists = self.store.exists(self.qname)
        self.con = _cursor()
        present: list[str] = []
        if self.exists:
            ds = self.store.arrow_dataset(self.qname)
            if keyed:
                _register_keyed(self.con, ds)
            else:
                self.con.register_arrow("q", ds)
            sql = "SELECT DISTINCT unnest(_lg_failed_checks) FROM q ORDER BY 1"
            present = [str(r[0]) for r in self.con.execute(sql).fetchall()]
        if check is not None:
            known = sorted({*self.defined, "parse_error", *present})
            if check not in known:
                raise UsageError(
                    f"dataset '{dataset}' has no check '{check}'",
                    hint=did_you_mean(check, known) or f"its checks: {', '.join(known)}",
                )
        self.superseded = (
            sorted(_superseded_runs(self.store, dataset, self.qname)) if self.exists else []
        )

    def filters(
        self, run: str | None, check: str | None, history: bool
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if run:
            where.append("starts_with(_lg_run_id, ?)")
            params.append(run)
        if check:
            where.append("list_contains(_lg_failed_checks, ?)")
            params.append(check)
        if self.superseded and not history:
            where.append("NOT list_contains(?, _lg_run_id)")
            params.append(self.superseded)
        return where, params

    def count(self, where: list[str], params: list[Any]) -> int:
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        return int(self.con.execute("SELECT count(*) FROM q" + cond, params).fetchall()[0][0])

    def by_check(self, where: list[str], params: list[Any]) -> dict[str, int]:
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        rows = self.con.execute(
            "SELECT c, count(*) FROM (SELECT unnest(_lg_failed_checks) AS c FROM q"
            + cond
            + ") GROUP BY c ORDER BY 2 DESC, 1",
            params,
        ).fetchall()
        return {str(c): int(n) for c, n in rows}

    def explain(self, rows: list[dict[str, Any]]) -> None:
        from lockgate.quality.explain import explain_failures

        for r in rows:
            r["_lg_why"] = [
                {"check": name, "reason": why}
                for name, why in explain_failures(r.get("_lg_failed_checks") or [], r, self.defined)
            ]

    def close(self) -> None:
        self.con.close()


_BASE: list[Any] = []
_BASE_LOCK = threading.Lock()


def _cursor() -> Any:
    """An engine handle of its own (own temporary views) on one in-memory DuckDB database per
    process: opening a new database costs ~150 ms, a cursor well under 1 ms."""
    from lockgate.engine.session import DuckDBEngine

    with _BASE_LOCK:
        if not _BASE:
            _BASE.append(DuckDBEngine())
        return _BASE[0].cursor()


def _dicts(res: Any) -> list[dict[str, Any]]:
    cols = [str(d[0]) for d in res.description or ()]
    return [dict(zip(cols, r, strict=True)) for r in res.fetchall()]


def quarantine(
    project: Any,  # a Project, or the path of its folder
    dataset: str,
    *,
    run: str | None = None,
    check: str | None = None,
    include_history: bool = False,
    limit: int = 20,
    show_pii: bool = False,
) -> QuarantineView:
    """A dataset's quarantined rows: the newest ``limit`` (optionally of one run, by id
    prefix, or failing one check), each with ``_lg_why`` = [{check, reason}], and their
    counts by check; rows of batches a later run replaced only with ``include_history``.
    The data behind ``lockgate quarantine``. Personal values are masked unless
    ``show_pii`` (:mod:`lockgate.pii`). Unknown datasets and checks are
    :class:`UsageError` with a did-you-mean."""
    from lockgate._project_ref import with_dataset

    project = with_dataset(project, dataset)
    scope = _Scope(project, dataset, check, keyed=False)
    view = QuarantineView(dataset, "all" if include_history else "current")
    try:
        if not scope.exists:
            return view
        view.exists = True
        where, params = scope.filters(run, check, include_history)
        view.total = scope.count(where, params)
        if scope.superseded and not include_history:
            hidden, hparams = scope.filters(run, check, True)
            hidden.append("list_contains(?, _lg_run_id)")
            view.superseded_rows_hidden = scope.count(hidden, [*hparams, scope.superseded])
        view.by_check = scope.by_check(where, params)
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        view.rows = _dicts(
            scope.con.execute(
                "SELECT * FROM q" + cond + " ORDER BY _lg_quarantined_at DESC, _lg_run_id LIMIT ?",
                [*params, limit],
            )
        )
        scope.explain(view.rows)
        view.rows = _masked(project, dataset, view.rows, show_pii)
        return view
    finally:
        scope.close()


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


@dataclass
class QuarantinePage:
    """One keyset page of a dataset's quarantine, newest first. ``next_after`` is the
    opaque cursor of the following page (None on the last one)."""

    dataset: str
    total: int = 0  # rows in scope before the column filter
    by_check: dict[str, int] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # each with ``_lg_why``
    next_after: str | None = None


_KEY = ("_lg_quarantined_at", "_lg_run_id", "_lg_file", "_lg_rownum")


def quarantine_page(
    project: Any,  # a Project, or the path of its folder
    dataset: str,
    *,
    run: str | None = None,
    check: str | None = None,
    column: str | None = None,
    value: str | None = None,
    after: str | None = None,
    limit: int = 50,
    include_history: bool = False,
    show_pii: bool = False,
) -> QuarantinePage:
    """Rows of ``dataset``'s quarantine in a total order (quarantined at, newest first; then
    run id, data file and row number in the file, so rows that tie on time keep one place),
    ``limit`` per page after the cursor ``after``: paging never repeats or misses a row of
    one table version. ``column``/``value`` keep rows whose column, as text, equals value.
    Pass a page's ``next_after`` as ``after`` for the next one (``lockgate.api``).
    Personal values are masked unless ``show_pii``, and then cannot be filtered by."""
    from lockgate._project_ref import with_dataset
    from lockgate.pii import pii_columns, refuse_masked_filter

    project = with_dataset(project, dataset)
    if not show_pii:
        refuse_masked_filter(pii_columns(project, dataset), column, dataset)
    scope = _Scope(project, dataset, check, keyed=True)
    page = QuarantinePage(dataset)
    try:
        if not scope.exists:
            return page
        where, params = scope.filters(run, check, include_history)
        page.total = scope.count(where, params)
        page.by_check = scope.by_check(where, params)
        described = scope.con.execute("DESCRIBE q").fetchall()
        page.columns = [str(r[0]) for r in described if r[0] not in _KEY[2:]]
        if column is not None:
            if column not in page.columns:
                raise UsageError(f"the quarantine of '{dataset}' has no column '{column}'")
            where.append(f"CAST({_quote(column)} AS VARCHAR) IS NOT DISTINCT FROM ?")
            params.append(value)
        if after:
            where.append(
                "(_lg_quarantined_at < ?::TIMESTAMPTZ OR (_lg_quarantined_at = ?::TIMESTAMPTZ"
                " AND (_lg_run_id, _lg_file, _lg_rownum) > (?, ?, ?)))"
            )
            at, run_id, file, rownum = _decode(after)
            params += [at, at, run_id, file, rownum]
        cond = (" WHERE " + " AND ".join(where)) if where else ""
        order = " ORDER BY _lg_quarantined_at DESC, _lg_run_id, _lg_file, _lg_rownum LIMIT ?"
        sql = "SELECT * FROM q" + cond + order
        found = _dicts(scope.con.execute(sql, [*params, limit + 1]))
        if len(found) > limit:
            found = found[:limit]
            page.next_after = _encode([found[-1][k] for k in _KEY])
        for r in found:
            r.pop("_lg_file", None)
            r.pop("_lg_rownum", None)
        scope.explain(found)
        page.rows = _masked(project, dataset, found, show_pii)
        return page
    finally:
        scope.close()


def _masked(
    project: Any, dataset: str, rows: list[dict[str, Any]], show_pii: bool
) -> list[dict[str, Any]]:
    from lockgate.pii import mask_rows, pii_columns

    return rows if show_pii else mask_rows(rows, pii_columns(project, dataset))


def _quote(name: str) -> str:
    from sqlglot import exp

    return exp.column(name, quoted=True).sql("duckdb")


def _register_keyed(con: Any, dataset: Any) -> None:
    """View ``q`` over the quarantine with ``_lg_file``/``_lg_rownum``: each row's data file
    and position in it (stable for a table version)."""
    import pyarrow as pa

    files = getattr(dataset, "files", None)
    if files and all(str(f).startswith("/") for f in files):
        from sqlglot import exp

        paths = exp.Array(expressions=[exp.Literal.string(str(f)) for f in files]).sql("duckdb")
        con.execute(
            "CREATE TEMP VIEW q AS SELECT * EXCLUDE (file_row_number),"
            " file_row_number AS _lg_rownum"
            f" FROM read_parquet({paths}, filename='_lg_file', file_row_number=true,"
            " union_by_name=true)"
        )
        return
    parts = []  # partitioned / remote tables: number the rows of each fragment here
    for frag in dataset.get_fragments():
        tbl = frag.to_table(schema=dataset.schema)
        tbl = tbl.append_column("_lg_file", pa.array([frag.path] * tbl.num_rows, pa.string()))
        parts.append(tbl.append_column("_lg_rownum", pa.array(range(tbl.num_rows), pa.int64())))
    con.register_arrow("q", pa.concat_tables(parts) if parts else dataset.to_table())


def _encode(key: list[Any]) -> str:
    import base64
    import json

    at = key[0].isoformat() if hasattr(key[0], "isoformat") else str(key[0])
    raw = json.dumps([at, str(key[1]), str(key[2]), int(key[3])]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[str, str, str, int]:
    import base64
    import json

    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, run_id, file, rownum = json.loads(raw)
        return str(at), str(run_id), str(file), int(rownum)
    except (ValueError, TypeError) as e:
        raise UsageError("invalid page cursor") from e
