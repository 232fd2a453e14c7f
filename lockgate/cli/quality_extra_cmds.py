"""``profile``, ``suggest`` and ``quality``: look at data and at its quality over time."""

from __future__ import annotations

import glob
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from lockgate.cli.common import (
    add_commands,
    console,
    err_console,
    handle_errors,
    print_json,
    render_reject_sample,
)
from lockgate.engine.base import Engine
from lockgate.engine.session import DuckDBEngine
from lockgate.errors import InputError, UsageError
from lockgate.history_view import group_scores
from lockgate.quality.checks import Dimension
from lockgate.quality.profile import Profile, profile, with_rejects
from lockgate.redact import redact
from lockgate.sources.targets import TargetRead, register_target, target_label

ProjectOpt = typer.Option(
    Path("."), "--project", "-p", help="project folder (for dataset names and score history)"
)

_SPARKS = "▁▂▃▄▅▆▇█"


def register(app: typer.Typer) -> None:
    add_commands(app, profile=profile_cmd, suggest=suggest_cmd, quality=quality_cmd)


# ----------------------------------------------------------------------------- targets


@contextmanager
def _open_target(target: str, project_dir: Path) -> Iterator[tuple[Engine, str, TargetRead]]:
    """An engine with ``target`` readable as a relation; yields (engine, relation name,
    what reading rejected).

    ``target`` is a file, a glob, a Delta table folder, a PostgreSQL table URL, or the name
    of a dataset of the project in ``project_dir`` (read from its Delta table).
    """
    with (
        DuckDBEngine(timezone="UTC") as eng,  # the target readers are DuckDB's
        tempfile.TemporaryDirectory(prefix="lockgate-profile-") as tmp,
    ):
        view = f"_lg_target_{uuid.uuid4().hex[:8]}"
        if _is_path(target) or target.startswith(("postgresql", "postgres://")):
            read = register_target(eng.con, view, target, tmp)
        else:
            eng.register_arrow(view, _dataset_arrow(target, project_dir))
            read = TargetRead(label=target)
        _report_rejects(read)
        yield eng, view, read


def _dataset_of(project: Any, target: str) -> str | None:
    """The dataset whose table (or quarantine table) folder ``target`` is, if any: its
    personal columns are masked in the profile as by name."""
    from lockgate.storage.base import QUARANTINE_SUFFIX

    try:
        folder = Path(target).expanduser().resolve()
        if folder.parent != project.warehouse_path.resolve():
            return None
    except OSError:
        return None
    name = folder.name.removesuffix(QUARANTINE_SUFFIX)
    return name if name in project.datasets else None


def _is_path(target: str) -> bool:
    return Path(target).expanduser().exists() or glob.has_magic(target)


def _report_rejects(read: TargetRead) -> None:
    """Records that could not be read, on stderr: they are in no statistic."""
    if not read.rejected:
        return
    err_console.print(
        f"[yellow]warning:[/] {read.rejected:,} record(s) of {escape(read.label)} could not be "
        f"read and are not in the profile ({read.records:,} records read, {read.rows:,} "
        "profiled):",
        highlight=False,
        soft_wrap=True,
    )
    render_reject_sample(err_console, read)


def _dataset_arrow(name: str, project_dir: Path) -> Any:
    """The published table of dataset ``name`` of the project in ``project_dir``, lazily."""
    from lockgate.api import read

    if not (project_dir / "lockgate.yaml").exists():
        raise InputError(
            f"no file, glob or Delta table at {name!r}, and {project_dir} is not a lockgate"
            " project to look up a dataset of that name",
            hint="pass a path, or --project DIR to profile a dataset",
        )
    return read(project_dir, name, as_="dataset")


def _profile(target: str, project_dir: Path, top_k: int) -> Profile:
    label = target_label(target)
    with (
        err_console.status(f"profiling {escape(label)} …", spinner="dots"),
        _open_target(target, project_dir) as (con, view, read),
    ):
        return with_rejects(profile(con, view, top_k=top_k, target=label), read)


# ----------------------------------------------------------------------------- profile


@handle_errors
def profile_cmd(
    target: str = typer.Argument(..., help="file, glob, Delta table folder or dataset name"),
    html: Path | None = typer.Option(None, "--html", help="write the HTML report to FILE"),
    json_out: bool = typer.Option(False, "--json", help="print the profile as JSON on stdout"),
    output: Path | None = typer.Option(None, "--output", "-o", help="write the JSON to FILE"),
    top_k: int = typer.Option(10, "--top-k", min=1, max=1000, help="top values per column"),
    show_pii: bool = typer.Option(
        False, "--show-pii", help="show the values of a dataset's personal (pii:) columns"
    ),
    project_dir: Path = ProjectOpt,
) -> None:
    """Per-column statistics of a table or file in one pass (JSON, HTML report, table)."""
    import json

    p = _profile(target, project_dir, top_k)
    if not show_pii and (project_dir / "lockgate.yaml").exists():
        from lockgate.pii import mask_profile, pii_columns
        from lockgate.project import load_project

        project = load_project(project_dir)
        dataset = _dataset_of(project, target) if _is_path(target) else target
        if dataset is not None:
            p = mask_profile(p, pii_columns(project, dataset))
    if output is not None:
        _write(output, json.dumps(p.to_dict(), indent=2) + "\n")
    if html is not None:
        from lockgate.quality.report import render_html

        _write(html, render_html(p))
    if json_out:
        print_json(p.to_dict())
        return
    console.print(_profile_table(p))
    for path, what in ((output, "JSON"), (html, "HTML report")):
        if path is not None:
            console.print(f"[green]wrote[/] {what} to {path}")


def _profile_table(p: Profile) -> Table:
    rejected = f" ({p.rejected:,} records rejected)" if p.rejected else ""
    t = Table(
        title=escape(
            f"{p.target} · {p.rows:,} rows{rejected} · {len(p.columns)} columns · {p.seconds:.2f}s"
        ),
        title_justify="left",
    )
    for name, justify in (
        ("column", "left"),
        ("type", "left"),
        ("null %", "right"),
        ("distinct ≈", "right"),
        ("min", "left"),
        ("max", "left"),
        ("mean", "right"),
    ):
        t.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in p.columns:
        null_style = "green" if c.null_count == 0 else ("yellow" if c.null_pct < 20 else "red")
        t.add_row(
            c.name,
            f"[dim]{c.type}[/]",
            f"[{null_style}]{c.null_pct:.1f}[/]",
            "" if c.distinct_approx is None else f"{c.distinct_approx:,}",
            _cell(c.min),
            _cell(c.max),
            "" if c.mean is None else f"{c.mean:.4g}",
        )
    return t


def _cell(v: Any, width: int = 28) -> str:
    if v is None:
        return ""
    text = f"{v:.6g}" if isinstance(v, float) else str(v)
    return text if len(text) <= width else text[: width - 1] + "…"


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(redact(text), encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write {path}: {e.strerror or e}") from e


# ----------------------------------------------------------------------------- suggest


@handle_errors
def suggest_cmd(
    target: str = typer.Argument(..., help="file, glob, Delta table folder or dataset name"),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="write the YAML to FILE (default: stdout)"
    ),
    project_dir: Path = ProjectOpt,
) -> None:
    """Propose a check file (YAML, to review) from a profile of TARGET."""
    from lockgate.quality.suggest import MAX_ACCEPTED_VALUES, suggest_checks

    label = target_label(target)
    with (
        err_console.status(f"profiling {escape(label)} …", spinner="dots"),
        _open_target(target, project_dir) as (con, view, read),
    ):
        p = profile(con, view, top_k=MAX_ACCEPTED_VALUES, target=label)
        p = with_rejects(p, read)
        is_dataset = not _is_path(target) and not target.startswith(("postgresql", "postgres://"))
        text = suggest_checks(p, dataset=target if is_dataset else None, con=con, table=view)
    if output is None:
        typer.echo(text, nl=False)
        return
    _write(output, text)
    n = sum(1 for line in text.splitlines() if line.startswith("  - type:"))
    console.print(f"[green]wrote[/] {n} suggested checks to {output} — review them before use")


# ----------------------------------------------------------------------------- quality


@handle_errors
def quality_cmd(
    dataset: str = typer.Argument(..., help="dataset name"),
    project_dir: Path = ProjectOpt,
    json_out: bool = typer.Option(False, "--json", help="machine-readable JSON on stdout"),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="how many recent runs"),
) -> None:
    """Quality score history of DATASET: per dimension and overall, per run."""
    from lockgate.history_view import quality

    history = quality(project_dir, dataset, limit=limit)
    runs = history["runs"]  # oldest first
    if json_out:
        print_json(history)
        return
    if not runs:
        console.print(f"no quality scores recorded for [bold]{dataset}[/] yet")
        return
    console.print(_quality_table(dataset, runs))
    overall = [r["scores"].get("overall") for r in runs]
    series = [x for x in overall if x is not None]
    if series:
        console.print(
            f"overall  {sparkline(series)}  {_score(series[0])} → {_score(series[-1])}"
            f"  ({len(series)} run{'s' if len(series) != 1 else ''}, oldest → newest)"
        )
    console.print(f"[dim]{history['definition']}; see {history['docs']}[/]", highlight=False)


def _quality_table(dataset: str, runs: list[dict[str, Any]]) -> Table:
    present = {d for r in runs for d in r["scores"]}
    dims = [d.value for d in Dimension if d.value in present]
    dims += sorted(present - set(dims) - {"overall"})
    t = Table(title=f"quality of {dataset} (oldest → newest)", title_justify="left")
    t.add_column("run")
    t.add_column("at")
    for d in dims:
        t.add_column(d, justify="right")
    t.add_column("overall", justify="right", style="bold")
    t.add_column("", justify="left")
    prev: float | None = None
    for r in runs:
        s = r["scores"]
        ov = s.get("overall")
        trend = ""
        if ov is not None and prev is not None:
            trend = "[green]▲[/]" if ov > prev + 1e-9 else ("[red]▼[/]" if ov < prev - 1e-9 else "")
        prev = ov if ov is not None else prev
        at = r["created_at"]
        t.add_row(
            r["run_id"][:8],
            at.strftime("%Y-%m-%d %H:%M") if hasattr(at, "strftime") else str(at),
            *[_score(s.get(d)) for d in dims],
            _score(ov),
            trend,
        )
    return t


def _score(x: float | None) -> str:
    if x is None:
        return "[dim]-[/]"
    style = "green" if x >= 0.99 else ("yellow" if x >= 0.9 else "red")
    return f"[{style}]{100 * x:.1f}%[/]"


def sparkline(values: Sequence[float], *, lo: float | None = None, hi: float | None = None) -> str:
    """One block character per value, scaled between ``lo`` and ``hi`` (default: the data).

    >>> sparkline([0.0, 0.5, 1.0])
    '▁▅█'
    >>> sparkline([0.9, 0.9])
    '██'
    """
    if not values:
        return ""
    lo = min(values) if lo is None else lo
    hi = max(values) if hi is None else hi
    if hi - lo <= 1e-12:
        return _SPARKS[-1] * len(values)
    top = len(_SPARKS) - 1
    return "".join(_SPARKS[max(0, min(top, round((v - lo) / (hi - lo) * top)))] for v in values)


__all__ = ["group_scores", "register", "sparkline"]
