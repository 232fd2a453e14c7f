"""``lockgate vacuum``: delete old table versions' files, keeping pinned versions."""

from __future__ import annotations

from pathlib import Path

import typer

from lockgate.cli.common import console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    app.command("vacuum")(vacuum_cmd)


@handle_errors
def vacuum_cmd(
    datasets: list[str] = typer.Argument(None, help="datasets (default: all published)"),
    retain_hours: int = typer.Option(
        168, "--retain-hours", min=0, help="keep versions newer than this (Delta's default: 168)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="list the files, delete nothing"),
    project: Path = typer.Option(Path("."), "--project", "-p", help="project folder"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
) -> None:
    """Delete the data files of table versions older than --retain-hours, except the versions
    recorded training sets read (so `features training-set --replay` still works)."""
    from lockgate.vacuum import vacuum

    results = vacuum(project, datasets or (), retain_hours=retain_hours, dry_run=dry_run)
    if as_json:
        print_json([r.as_dict() for r in results])
        return
    verb = "would delete" if dry_run else "deleted"
    for r in results:
        kept = f"; kept pinned v{', v'.join(map(str, r.kept_versions))}" if r.kept_versions else ""
        console.print(f"{r.dataset}: {verb} {len(r.deleted)} file(s){kept}", highlight=False)
        if r.lost_versions:
            lost = ", v".join(map(str, r.lost_versions))
            console.print(
                f"  warning: pinned v{lost} can no longer be read (its log was cleaned up): "
                "training sets made from it cannot be replayed",
                highlight=False,
            )
