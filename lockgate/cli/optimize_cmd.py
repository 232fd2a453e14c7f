"""``lockgate optimize``: compact the small files of the project's tables."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from lockgate.cli import common
from lockgate.cli.common import JsonOpt, ProjectOpt, TargetOpt, handle_errors


def register(app: typer.Typer) -> None:
    common.add_commands(app, optimize=optimize_cmd)


@handle_errors
def optimize_cmd(
    tables: list[str] = typer.Argument(
        None, help="tables to compact (default: every table of the project)"
    ),
    min_files: int = typer.Option(
        10, "--min-files", help="compact a table only when it has this many small files"
    ),
    target_mb: int = typer.Option(100, "--target-mb", help="size of the rewritten files (MiB)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="count small files; commit nothing"),
    project_dir: Path = ProjectOpt,
    target: str | None = TargetOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Rewrite small data files into large ones (one commit per table; no data changes)."""
    from lockgate._project_ref import as_project
    from lockgate.optimize import optimize

    done = optimize(
        as_project(project_dir, target),
        tables or (),
        min_files=min_files,
        target_bytes=target_mb * 1024 * 1024,
        dry_run=dry_run,
    )
    if as_json:
        common.print_json([c.as_dict() for c in done])
        return
    t = Table(title="optimize (dry run)" if dry_run else "optimize")
    for col in ("table", "files", "small", "removed", "added", "version"):
        t.add_column(col, justify="left" if col == "table" else "right")
    for c in done:
        version = "-" if c.version is None else str(c.version)
        t.add_row(
            c.table,
            f"{c.files:,}",
            f"{c.small_files:,}",
            f"{c.files_removed:,}",
            f"{c.files_added:,}",
            version,
        )
    common.console.print(t)
    if not done:
        common.console.print("no tables yet: nothing to compact")
