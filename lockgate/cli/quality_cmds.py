"""Quality commands: ``check`` (standalone checks on any table); more are registered below."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from lockgate.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    console,
    handle_errors,
    print_json,
    render_checks,
    render_reject_sample,
)
from lockgate.errors import UsageError

if TYPE_CHECKING:
    from lockgate.quality.standalone import StandaloneResult


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
        max_rejected: int = typer.Option(
            0,
            "--max-rejected",
            min=0,
            help="records that cannot be read (bad value, malformed line) tolerated before "
            "the check fails",
        ),
    ) -> None:
        """Run a check file against a table without a project.

        Records that cannot be read (a value that does not convert to its column's type, a
        malformed line) are not checked: they are counted and listed as rejected, and fail
        the check unless --max-rejected allows them.

        Exit code 0: no error-severity check failed and no more than --max-rejected records
        were rejected; 1: otherwise; 2: usage/input/config error.
        """
        from lockgate.quality.standalone import run_standalone

        clock = _parse_now(now)
        refs = {}
        for r in ref:
            name, sep, tgt = r.partition("=")
            if not sep or not name or not tgt:
                raise UsageError(f"--ref {r!r}: expected NAME=TARGET")
            refs[name] = tgt
        result = run_standalone(
            target, checks, now=clock, refs=refs, sample_size=samples, max_rejected=max_rejected
        )
        if as_json:
            print_json(_json_result(result))
        else:
            _render(result)
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


def _json_result(result: StandaloneResult) -> dict[str, Any]:
    """``total_rows`` = ``records`` (every record read) = ``rows_checked`` + ``rejected.count``:
    a record that cannot be read is never left out of the total."""
    out: dict[str, Any] = {
        "target": result.target,
        "total_rows": result.records,
        "records": result.records,
        "rows_checked": result.total_rows,
        "rejected": result.rejected.to_dict() if result.rejected else {"count": 0, "sample": []},
        "max_rejected": result.max_rejected,
        "passed": result.passed,
        "seconds": round(result.seconds, 4),
        "checks": [_json_entry(r.to_dict()) for r in result.results],
    }
    if result.reference_rejected:
        out["reference_rejected"] = {
            name: read.to_dict() for name, read in result.reference_rejected.items()
        }
    return out


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


def _render(result: StandaloneResult) -> None:
    title = f"{result.target}: {result.records:,} records read"
    if result.rejected_count:
        title += f", {result.total_rows:,} checked, {result.rejected_count:,} rejected"
    console.print(escape(title), highlight=False, soft_wrap=True)
    render_checks([r.to_dict() for r in result.results], title="checks")
    failed = [r for r in result.results if not r.passed]
    for r in failed:
        for s in r.samples[:3]:
            console.print(
                f"  [dim]{escape(r.name)}[/] sample: {escape(str(s))}",
                highlight=False,
                soft_wrap=True,
            )
    reads = [("", result.rejected)] if result.rejected_count else []
    reads += [(f"reference {n}: ", read) for n, read in result.reference_rejected.items()]
    for prefix, read in reads:
        if read is None:
            continue
        over = result.all_rejected > result.max_rejected
        style = "red" if over else "yellow"
        console.print(
            f"[{style}]{escape(prefix)}{read.rejected:,} record(s) could not be read and were "
            "not checked[/]",
            highlight=False,
            soft_wrap=True,
        )
        render_reject_sample(console, read)
    n_err = sum(1 for r in failed if r.severity == "error")
    line = f"{len(result.results)} checks, {len(failed)} failing ({n_err} error)"
    if result.all_rejected:
        line += f", {result.all_rejected:,} records rejected (allowed: {result.max_rejected:,})"
    console.print(f"{line} in {result.seconds:.2f}s", highlight=False, soft_wrap=True)
