"""``lockgate cdc status`` and ``lockgate cdc drop-slot DATASET`` (change data capture)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from lockgate.cli.common import (
    EXIT_FAILED,
    JsonOpt,
    ProjectOpt,
    TargetOpt,
    console,
    handle_errors,
    print_json,
)

cdc_app = typer.Typer(
    help="change data capture: positions of postgres_cdc (replication slots) and mysql_cdc datasets"
)


@handle_errors
def status_cmd(
    project_dir: Path = ProjectOpt, target: str | None = TargetOpt, as_json: bool = JsonOpt
) -> None:
    """Each change-source dataset's slot: retained WAL, wal_status, confirmed vs table LSN."""
    from lockgate.api import cdc_status
    from lockgate.sources._pgoutput import lsn_text

    rows = cdc_status(project_dir, target=target)
    if as_json:
        print_json(rows)
        return
    t = Table(title="change data capture")
    for col in ("dataset", "slot", "wal_status", "retained WAL", "slot LSN", "table LSN"):
        t.add_column(col)
    for r in rows:
        conf, pos = r.get("confirmed_lsn"), r.get("table_position")
        retained = r.get("retained_bytes")
        show = _binlog_text if "current_position" in r else lsn_text  # mysql_cdc: the binlog
        if "current_position" in r:
            conf = r.get("current_position")
        t.add_row(
            str(r["dataset"]),
            str(r["slot"]) + ("" if r.get("exists") else " [red](missing)[/]"),
            ("[red]" if r.get("warn") else "") + str(r.get("wal_status") or "-"),
            "-" if retained is None else f"{int(str(retained)):,} B",
            show(int(str(conf))) if conf is not None else "-",
            show(int(str(pos))) if pos is not None else "-",
        )
    console.print(t)
    if any(r.get("warn") or not r.get("exists") for r in rows):
        raise typer.Exit(EXIT_FAILED)


def _binlog_text(position: int) -> str:
    """A mysql_cdc position as ``file no.:byte``."""
    from lockgate.sources._binlog import decode

    number, pos = decode(position)
    return f"{number:06d}:{pos}"


@handle_errors
def drop_slot_cmd(
    dataset: str = typer.Argument(..., help="a dataset with a change source (postgres_cdc)"),
    project_dir: Path = ProjectOpt,
    target: str | None = TargetOpt,
) -> None:
    """Drop the dataset's replication slot (it stops holding back WAL). The table keeps its
    rows; rebuild it from a new snapshot with `lockgate run --select DATASET --full-refresh`."""
    from lockgate.api import cdc_drop_slot

    dropped = cdc_drop_slot(dataset, project_dir, target=target)
    console.print(
        f"dropped the replication slot of {dataset}"
        if dropped
        else f"{dataset} has no replication slot (nothing to drop)"
    )
    console.print(f"next: lockgate run --select {dataset} --full-refresh (a new snapshot)")


def register(app: typer.Typer) -> None:
    cdc_app.command("status")(status_cmd)
    cdc_app.command("drop-slot")(drop_slot_cmd)
    app.add_typer(cdc_app, name="cdc")
