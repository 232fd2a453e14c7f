"""Shared CLI plumbing: consoles, JSON output, error rendering, exit codes.

Exit codes scripts can rely on:
  0  success
  1  the work ran but failed (a step failed, a gate blocked, an error-severity check failed)
  2  usage, configuration or input error (nothing ran)
  3  the project is locked by another run
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import wraps
from pathlib import Path
from typing import Any, Protocol, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text
from typer import TyperException

from lockgate.errors import LockgateError
from lockgate.redact import install_log_redaction, redact, redact_obj


def _width(stream: Any) -> int | None:
    """Rich wraps to 80 columns when output is not a terminal; tables are wider than that."""
    if hasattr(stream, "isatty") and stream.isatty():
        return None
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return 160


class RedactingConsole(Console):
    """A Rich console whose output never shows a secret (:func:`lockgate.redact.redact` on
    the rendered text). Callers still redact values before rendering: a table may wrap a
    URL across lines, where no pattern can recognise it."""

    def _render_buffer(self, buffer: Any) -> str:
        return redact(super()._render_buffer(buffer))


console = RedactingConsole(width=_width(sys.stdout))
err_console = RedactingConsole(stderr=True, width=_width(sys.stderr))

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3

F = TypeVar("F", bound=Callable[..., Any])


class _State:
    debug: bool = False


state = _State()


def _default(o: Any) -> Any:
    if isinstance(o, datetime | date):
        return o.isoformat()
    if isinstance(o, Decimal):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, bytes):
        return o.hex()
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    return str(o)


def print_json(obj: Any) -> None:
    """Write ``obj`` as JSON on stdout (machine output: nothing else goes to stdout)."""
    # redacted string by string (a password holding a quote is escaped in JSON text)
    plain = redact_obj(json.loads(json.dumps(obj, default=_default)))
    sys.stdout.write(json.dumps(plain, indent=2) + "\n")
    sys.stdout.flush()


def handle_errors(fn: F) -> F:
    """Render a known error as one red line (plus hint) and exit with its code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LockgateError as e:
            if state.debug:
                err_console.print_exception()
            err_console.print(
                f"[bold red]error:[/] {escape(e.message)}", highlight=False, soft_wrap=True
            )
            if e.hint:
                err_console.print(
                    f"[yellow]hint:[/] {escape(e.hint)}", highlight=False, soft_wrap=True
                )
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[red]interrupted[/]")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, TyperException, SystemExit):
            raise
        except Exception as e:  # a bug: one line, the traceback only with --debug
            if state.debug:  # through the redacting console: a driver's message may hold a URL
                err_console.print_exception()
                raise typer.Exit(EXIT_FAILED) from None
            err_console.print(
                f"[bold red]error:[/] unexpected {type(e).__name__}: "
                + escape(redact(" ".join(str(e).split()))),
                highlight=False,
            )
            err_console.print("[yellow]hint:[/] run again with --debug for the traceback")
            raise typer.Exit(EXIT_FAILED) from None

    return wrapper  # type: ignore[return-value]


def render_checks(checks: list[Any], title: str = "checks") -> None:
    """Check results as ``check`` shows them, one line per check (never cut, whatever the
    width): status (FAIL for an error-severity failure, warn for a warn-severity one), a
    row-level check's failing rows and share, a table-level check's observed value."""
    datasets = {_field(c, "dataset") for c in checks}
    console.print(f"[bold]{escape(title)}[/]", highlight=False)
    for c in checks:
        name, severity, status, failing, pct, detail = check_cells(c)
        where = f"{escape(str(_field(c, 'dataset')))}." if len(datasets) > 1 else ""
        if pct:  # row-level
            text = f"{detail} ({pct} of rows)" if detail else f"{failing} failing rows"
        else:
            text = detail
        pad = " " * (4 - len(Text.from_markup(status).plain))
        dim = f", {escape(str(_field(c, 'dimension')))}" if _field(c, "dimension") else ""
        console.print(
            f"  {status}{pad} {where}{name} [dim]({severity}{dim})[/]"
            + (f": {text}" if text else ""),
            highlight=False,
            soft_wrap=True,
        )


def check_cells(c: Any) -> list[str]:
    """check, severity, status, failing, % rows, observed/detail of one stored result."""
    passed = bool(_field(c, "passed"))
    severity = str(_field(c, "severity") or "error")
    if passed:
        status = "[green]pass[/]"
    else:
        status = "[red]FAIL[/]" if severity == "error" else "[yellow]warn[/]"
    fraction = _field(c, "fraction")
    row_level = fraction is not None
    failing = _field(c, "failing_rows") or 0
    observed = _field(c, "observed")
    detail = str(_field(c, "message") or "")
    if not detail and observed is not None:
        detail = f"observed {observed:g}" if isinstance(observed, float) else f"observed {observed}"
    band = _field(c, "expected")
    if isinstance(band, dict) and band.get("low") is not None and "expected [" not in detail:
        obs = f"observed {observed:.6g}, " if isinstance(observed, float) else ""
        detail = (detail + "; " if detail else "") + (
            f"{obs}expected [{band['low']:.6g}, {band['high']:.6g}] from {band['history']} runs"
        )
    return [
        escape(str(_field(c, "check_name") or _field(c, "name"))),
        escape(severity),
        status,
        f"{failing:,}" if row_level else "",
        f"{fraction:.3%}" if row_level else "",
        escape(detail),
    ]


def _field(obj: Any, key: str) -> Any:
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, key, None)


def configure_output() -> None:
    """Fix console widths for this invocation: a terminal's own width, else 160 columns
    (Rich would wrap tables to 80 when output is piped or captured)."""
    console.width = _width(console.file) or console.width
    err_console.width = _width(err_console.file) or err_console.width


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the structured fields a
    record carries (run events: run id, dataset, phase, status, duration, rows, cost)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "lockgate", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(debug: bool, log_format: str = "text") -> None:
    configure_output()
    state.debug = debug
    if log_format == "json":  # structured: run events (INFO) and every warning, as JSON lines
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLogFormatter())
        logging.basicConfig(
            level=logging.DEBUG if debug else logging.WARNING, handlers=[handler], force=True
        )
        logging.getLogger("lockgate.events").setLevel(logging.INFO)
    else:
        logging.basicConfig(
            level=logging.DEBUG if debug else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
    install_log_redaction()


#: ``--target NAME``: the environment of lockgate.yaml's ``targets:`` (else LOCKGATE_TARGET,
#: else ``default_target``)
TargetOpt = typer.Option(
    None, "--target", "-t", help="environment from lockgate.yaml targets: (dev, prod…)"
)


class _Rejected(Protocol):
    @property
    def file(self) -> str | None: ...
    @property
    def line(self) -> int | None: ...
    @property
    def reason(self) -> str: ...


class _Rejects(Protocol):
    @property
    def rejected(self) -> int: ...
    @property
    def sample(self) -> Sequence[_Rejected]: ...


def render_reject_sample(out: Console, read: _Rejects) -> None:
    """Each sampled record that could not be read (``file:line: reason``), then how many
    more there were."""
    for r in read.sample:
        where = f"{r.file}:{r.line}" if r.line is not None else str(r.file)
        out.print(f"  {escape(where)}: {escape(r.reason)}", highlight=False, soft_wrap=True)
    if read.rejected > len(read.sample):
        more = f"  … and {read.rejected - len(read.sample):,} more"
        out.print(more, highlight=False, soft_wrap=True)


ProjectOpt = typer.Option(Path("."), "--project", "-p", help="project folder")
JsonOpt = typer.Option(False, "--json", help="machine-readable JSON on stdout")


def add_commands(app: typer.Typer, **commands: Callable[..., Any]) -> None:
    """Register each command function under its name (``run=run_cmd``)."""
    for name, fn in commands.items():
        app.command(name)(fn)
