"""``init``, ``validate``, ``schema``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import typer
from rich.markup import escape

from lockgate.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    JsonOpt,
    ProjectOpt,
    TargetOpt,
    add_commands,
    console,
    handle_errors,
    print_json,
)
from lockgate.errors import ConfigError, Problem
from lockgate.project import init_project, json_schema, load_project


def register(app: typer.Typer) -> None:
    add_commands(app, init=init_cmd, validate=validate_cmd, schema=schema_cmd)


@handle_errors
def init_cmd(
    path: Path = typer.Argument(Path("."), help="folder to create the project in"),
    name: str | None = typer.Option(None, "--name", help="project name (default: folder name)"),
) -> None:
    """Create a small working example project."""
    written = init_project(path, name=name)
    console.print(f"[green]✓[/] created a lockgate project in [bold]{escape(str(path))}[/]")
    for f in written:
        console.print(f"  {escape(_shown(f, path))}", highlight=False)
    where = "" if path.resolve() == Path.cwd() else f" -p {path}"
    console.print("next:")
    for cmd, why in (
        ("validate", "every problem at once, with file:line"),
        ("run", "stage, audit and publish the three datasets"),
        ("quarantine customers", "the rows the checks rejected, and why"),
    ):
        console.print(f"  [bold]lockgate {escape(cmd + where)}[/]  [dim]# {why}[/]", soft_wrap=True)


@handle_errors
def validate_cmd(
    project_dir: Path = ProjectOpt, target: str | None = TargetOpt, as_json: bool = JsonOpt
) -> None:
    """Check the project (YAML, SQL, Python, references, cycles) and list every problem."""
    try:
        project = load_project(project_dir, target=target)
    except ConfigError as e:
        problems = e.problems
    else:
        problems = []
    if as_json:
        print_json([problem_dict(p) for p in problems])
    elif problems:
        render_problems(problems)
    else:
        n = len(project.datasets)
        console.print(f"[green]✓[/] {n} dataset{'s' if n != 1 else ''}, no problems")
    raise typer.Exit(EXIT_USAGE if problems else EXIT_OK)


@handle_errors
def schema_cmd(
    output: Path | None = typer.Option(None, "--output", "-o", help="write to this file"),
    kind: str = typer.Option(
        "all", "--kind", help="all | datasets (dataset YAML files) | project (lockgate.yaml)"
    ),
) -> None:
    """Print the JSON Schema of project files (for editor completion and validation)."""
    if kind not in ("all", "datasets", "project"):
        raise typer.BadParameter("use all, datasets or project", param_hint="--kind")
    schema = json_schema(kind)  # type: ignore[arg-type]  # checked just above
    if output is None:
        print_json(schema)
        return
    output.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    console.print(f"[green]✓[/] wrote {escape(str(output))}")


def problem_dict(p: Problem) -> dict[str, object]:
    return {k: getattr(p, k) for k in ("file", "line", "column", "message", "hint")}


def render_problems(problems: Iterable[Problem]) -> None:
    """Problems grouped by file, in line order, with hints."""
    by_file: dict[str, list[Problem]] = {}
    for p in problems:
        by_file.setdefault(p.file or "<project>", []).append(p)
    total = 0
    for file, items in by_file.items():
        console.print(f"[bold]{escape(file)}[/]")
        for p in sorted(items, key=lambda x: (x.line or 0, x.column or 0)):
            total += 1
            where = "" if p.line is None else f"{p.line}" + (f":{p.column}" if p.column else "")
            console.print(
                f"  [red]✗[/] [dim]{escape(where)}[/] {escape(p.message)}", highlight=False
            )
            if p.hint:
                console.print(f"      [yellow]hint:[/] {escape(p.hint)}", highlight=False)
    console.print(f"[red]{total} problem{'s' if total != 1 else ''}[/]")


def _shown(f: Path, base: Path) -> str:
    try:
        return f.relative_to(base).as_posix()
    except ValueError:
        return str(f)
