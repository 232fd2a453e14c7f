"""Quality commands: ``check`` (standalone checks on any table); more are registered below."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from lockgate.cli.common import EXIT_FAILED, EXIT_OK, console, handle_errors, print_json
from lockgate.errors import UsageError


def register(app: typer.Typer) -> None:
    _register_check(app)


# ---- check ---------------------------------------------------------------------------------


def _register_check(app: typer.Typer) -> None:
    @app.command("check")
    @handle_errors
    def check(
        target: str = typer.Argument(
            ...,
            help="Parquet/CSV/JSON file or glob, Delta table folder, or "
            "postgresql://user@host:port/db?table=schema.name",
        ),
        checks: Path = typer.Option(..., "--checks", "-c", help="check file (YAML)"),
        as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
        now: str | None = typer.Option(None, "--now", help="clock for freshness/lateness (ISO)"),
        ref: list[str] = typer.Option(
            [], "--ref", help="reference dataset NAME=TARGET (repeatable)"
        ),
        samples: int = typer.Option(5, "--samples", help="failing rows shown per check"),
    ) -> None:
        """Run a check file against a table without a project.

        Exit code 0: no error-severity check failed; 1: one did; 2: usage/input/config error.
        """
        from lockgate.quality.standalone import run_standalone

        clock = _parse_now(now)
        refs = {}
        for r in ref:
            name, sep, tgt = r.partition("=")
            if not sep or not name or not tgt:
                raise UsageError(f"--ref {r!r}: expected NAME=TARGET")
            refs[name] = tgt
        result = run_standalone(target, checks, now=clock, refs=refs, sample_size=samples)
        if as_json:
            print_json(
                {
                    "target": target,
                    "total_rows": result.total_rows,
                    "passed": result.passed,
                    "seconds": round(result.seconds, 4),
                    "checks": [_json_entry(r.to_dict()) for r in result.results],
                }
            )
        else:
            _render(target, result)
        raise typer.Exit(EXIT_OK if result.passed else EXIT_FAILED)


def _parse_now(now: str | None) -> datetime | None:
    if now is None:
        return None
    try:
        return datetime.fromisoformat(now)
    except ValueError:
        raise UsageError(
            f"--now {now!r} is not an ISO timestamp (e.g. 2025-01-01T00:00:00Z)"
        ) from None


def _json_entry(d: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "name",
        "type",
        "dimension",
        "severity",
        "failing_rows",
        "fraction",
        "passed",
        "observed",
        "samples",
        "rows_in_scope",
        "seconds",
        "message",
    )
    out = {k: d.get(k) for k in keys}
    for k in ("fraction", "observed"):
        v = out[k]
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = str(v)
    return out


def _render(target: str, result: Any) -> None:
    t = Table(title=f"{target}: {result.total_rows:,} rows", title_justify="left")
    for c in ("check", "dimension", "severity", "failing", "%", "status", "observed / detail"):
        t.add_column(c, justify="right" if c in ("failing", "%") else "left")
    for r in result.results:
        if r.passed:
            status = "[green]pass[/]"
        else:
            status = "[red]FAIL[/]" if r.severity == "error" else "[yellow]warn[/]"
        pct = f"{r.fraction:.3%}" if r.fraction is not None and r.row_level else ""
        detail = r.message or ("" if r.observed is None else str(r.observed))
        t.add_row(r.name, r.dimension, r.severity, f"{r.failing_rows:,}", pct, status, detail)
    console.print(t)
    failed = [r for r in result.results if not r.passed]
    for r in failed:
        for s in r.samples[:3]:
            console.print(f"  [dim]{r.name}[/] sample: {s}", highlight=False)
    n_err = sum(1 for r in failed if r.severity == "error")
    console.print(
        f"{len(result.results)} checks, {len(failed)} failing ({n_err} error) in "
        f"{result.seconds:.2f}s"
    )
