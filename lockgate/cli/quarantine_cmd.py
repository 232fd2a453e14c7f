"""``lockgate quarantine DATASET``: the quarantined rows of a dataset, one block per row
with every check it failed and why (the failing value), never cut to the terminal width.

By default only rows of the *current* data are listed: rows quarantined by a run whose
batch was later replaced — the dataset was overwritten (``write.mode: overwrite`` or a
``--full-refresh``) by a later run — are history, shown with ``--all``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from lockgate.cli.common import console, handle_errors, print_json

ProjectOpt = typer.Option(Path("."), "--project", "-p", help="project folder")

_META = ("_lg_failed_checks", "_lg_run_id", "_lg_quarantined_at")
_SOURCE = ("_lg_source_file", "_lg_line", "_lg_reason", "_lg_raw_record")
_RAW_CHARS = 300


@handle_errors
def quarantine_cmd(
    dataset: str = typer.Argument(..., help="dataset name"),
    limit: int = typer.Option(20, "--limit", "-n", min=0, help="rows to list (newest first)"),
    run: str = typer.Option(None, "--run", help="only rows quarantined by this run (id prefix)"),
    check: str = typer.Option(None, "--check", help="only rows that failed this check"),
    show_all: bool = typer.Option(
        False, "--all", help="include rows of batches a later run replaced (history)"
    ),
    project_dir: Path = ProjectOpt,
    as_json: bool = typer.Option(False, "--json", help="machine-readable JSON on stdout"),
) -> None:
    """Quarantined rows of a dataset: the checks each failed and why, with the value."""
    import duckdb

    from lockgate._suggest import did_you_mean
    from lockgate.errors import UsageError
    from lockgate.project import load_project
    from lockgate.storage import DeltaStore

    project = load_project(project_dir)
    if dataset not in project.datasets:
        raise UsageError(
            f"unknown dataset '{dataset}'",
            hint=did_you_mean(dataset, project.datasets) or "see `lockgate validate`",
        )
    spec = project.datasets[dataset]
    defined = {c.check_name: c for c in spec.checks}
    store = DeltaStore(project.warehouse_path)
    qname = f"{dataset}__quarantine"
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
    if not present and not store.exists(qname):
        if as_json:
            print_json(
                {
                    "dataset": dataset,
                    "scope": _scope(show_all),
                    "total": 0,
                    "superseded_rows_hidden": 0,
                    "by_check": {},
                    "rows": [],
                }
            )
        else:
            console.print(f"[green]no quarantined rows for {escape(dataset)}[/]")
        return

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
    if superseded and not show_all:
        where.append("NOT list_contains(?, _lg_run_id)")
        params.append(superseded)
    cond = (" WHERE " + " AND ".join(where)) if where else ""
    total = con.execute("SELECT count(*) FROM q" + cond, params).fetchall()[0][0]
    hidden = 0
    if superseded and not show_all:
        hcond = " WHERE " + " AND ".join([*hidden_where, "list_contains(?, _lg_run_id)"])
        hparams = [*params[:-1], superseded]
        hidden = con.execute("SELECT count(*) FROM q" + hcond, hparams).fetchall()[0][0]
    by_check = con.execute(
        "SELECT c, count(*) FROM (SELECT unnest(_lg_failed_checks) AS c FROM q"
        + cond
        + ") GROUP BY c ORDER BY 2 DESC, 1",
        params,
    ).fetchall()
    tbl = con.sql(
        "SELECT * FROM q" + cond + " ORDER BY _lg_quarantined_at DESC, _lg_run_id LIMIT ?",
        params=[*params, limit],
    ).to_arrow_table()
    rows = tbl.to_pylist()
    from lockgate.quality.explain import explain_failures

    for r in rows:
        r["_lg_why"] = [
            {"check": name, "reason": why}
            for name, why in explain_failures(r.get("_lg_failed_checks") or [], r, defined)
        ]
    if as_json:
        print_json(
            {
                "dataset": dataset,
                "scope": _scope(show_all),
                "total": total,
                "superseded_rows_hidden": hidden,
                "by_check": {str(c): int(n) for c, n in by_check},
                "rows": rows,
            }
        )
        return
    _render(dataset, total, hidden, by_check, rows, show_all)


def _scope(show_all: bool) -> str:
    return "all" if show_all else "current"


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


def _render(
    dataset: str,
    total: int,
    hidden: int,
    by_check: list[tuple[Any, Any]],
    rows: list[dict[str, Any]],
    show_all: bool,
) -> None:
    from lockgate.quality.explain import value

    def line(text: str) -> None:
        # soft wrap: a long check name or reason is never cut, whatever the terminal width
        console.print(text, highlight=False, soft_wrap=True)

    scope = "all runs" if show_all else "current data"
    line(f"[bold]{escape(dataset)}[/]: {total:,} quarantined rows ({scope})")
    if hidden:
        line(
            f"[dim]{hidden:,} more from batches a later run replaced: "
            f"lockgate quarantine {escape(dataset)} --all shows them[/]"
        )
    if by_check:
        line("by check: " + ", ".join(f"{escape(str(c))} {n:,}" for c, n in by_check))
    if len(rows) < total:
        line(f"[dim]newest {len(rows):,} shown (--limit)[/]")
    for i, r in enumerate(rows, 1):
        at: Any = r.get("_lg_quarantined_at")
        when = at.strftime("%Y-%m-%d %H:%M:%S") if hasattr(at, "strftime") else str(at or "")
        line("")
        line(f"[bold]#{i}[/] run {escape(str(r.get('_lg_run_id'))[:8])} · {escape(when)}")
        for w in r["_lg_why"]:
            line(f"  [red]✗[/] {escape(w['check'])}: {escape(w['reason'])}")
        data = {k: v for k, v in r.items() if not k.startswith("_lg_")}
        if any(v is not None for v in data.values()):
            line("  row: " + escape(", ".join(f"{k}={value(v)}" for k, v in data.items())))
        if r.get("_lg_source_file") or r.get("_lg_line") is not None:
            where = f"{r.get('_lg_source_file') or '?'} line {r.get('_lg_line') or '?'}"
            line(f"  source: {escape(where)}")
        raw = r.get("_lg_raw_record")
        if raw:
            text = str(raw)
            if len(text) > _RAW_CHARS:
                text = text[: _RAW_CHARS - 1] + f"… ({len(text):,} characters)"
            line(f"  raw: {escape(text)}")


__all__ = ["quarantine_cmd"]
