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

from lockgate.cli.common import ProjectOpt, TargetOpt, console, handle_errors, print_json

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
    show_pii: bool = typer.Option(
        False, "--show-pii", help="show the values of personal (pii:) columns"
    ),
    project_dir: Path = ProjectOpt,
    target: str | None = TargetOpt,
    as_json: bool = typer.Option(False, "--json", help="machine-readable JSON on stdout"),
) -> None:
    """Quarantined rows of a dataset: the checks each failed and why, with the value."""
    from lockgate.project import load_project
    from lockgate.quarantine_view import quarantine

    view = quarantine(
        load_project(project_dir, target=target),
        dataset,
        run=run,
        check=check,
        include_history=show_all,
        limit=limit,
        show_pii=show_pii,
    )
    if as_json:
        print_json(view.to_dict())
        return
    if not view.exists:
        console.print(f"[green]no quarantined rows for {escape(dataset)}[/]")
        return
    by_check = list(view.by_check.items())
    _render(dataset, view.total, view.superseded_rows_hidden, by_check, view.rows, show_all)


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
