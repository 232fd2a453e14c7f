"""The ``lockgate`` command.

Each group of commands lives in its own module exposing ``register(app)``.
"""

from __future__ import annotations

import importlib
import platform
from typing import Any

import typer
from typer.core import TyperGroup

from lockgate.cli.common import configure_logging, console

_GLOBAL_FLAGS = ("--debug",)
_GLOBAL_OPTIONS = ("--log-format",)


class _Root(TyperGroup):
    """The root command: global flags are accepted anywhere on the line
    (``lockgate run --debug`` as well as ``lockgate --debug run``), not after ``--``."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        head, found, rest = args[:end], list[str](), list[str]()
        i = 0
        while i < len(head):
            a = head[i]
            if a in _GLOBAL_OPTIONS and i + 1 < len(head):  # an option with its value
                found += [a, head[i + 1]]
                i += 2
                continue
            (found if a in _GLOBAL_FLAGS or a.startswith("--log-format=") else rest).append(a)
            i += 1
        return super().parse_args(ctx, [*found, *rest, *args[end:]])


app = typer.Typer(
    name="lockgate",
    cls=_Root,
    help="Quality-gated data pipelines: write, audit, publish into Delta Lake.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def version_text() -> str:
    """``lockgate X.Y.Z`` and the versions of the engines it runs on (for bug reports)."""
    import deltalake

    import lockgate
    from lockgate.engine import engine_class

    return (
        f"lockgate {lockgate.__version__} (Python {platform.python_version()}, "
        f"{engine_class().version()}, deltalake {deltalake.__version__})"
    )


def _show_version(value: bool) -> None:
    if value:
        console.print(version_text(), highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="show tracebacks and debug logs (anywhere on the line)"
    ),
    log_format: str = typer.Option(
        "text",
        "--log-format",
        help="logs on stderr: text, or json (one object per line: run id, dataset, phase, "
        "duration, rows, cost)",
    ),
    version: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="print the version and exit",
    ),
) -> None:
    if log_format not in ("text", "json"):
        raise typer.BadParameter("use text or json", param_hint="--log-format")
    configure_logging(debug, log_format)


# command modules, each with register(app); kept in one list so there is one way to add one
_COMMAND_MODULES = (
    "lockgate.cli.project_cmds",  # init, validate, schema
    "lockgate.cli.run_cmds",  # run, runs, show, quarantine
    "lockgate.cli.quality_cmds",  # check
    "lockgate.cli.quality_extra_cmds",  # profile, suggest, quality
    "lockgate.cli.ops_cmds",  # serve, freshness
    "lockgate.cli.stream_cmds",  # stream run
    "lockgate.cli.ui_cmds",  # ui, ui-token
    "lockgate.cli.lineage_cmds",  # lineage, why, anomalies
    "lockgate.cli.features_cmds",  # features training-set / materialize / serve
)

for _mod in _COMMAND_MODULES:
    try:
        importlib.import_module(_mod).register(app)
    except ModuleNotFoundError as _e:  # a command module not written yet
        if _e.name != _mod:
            raise


def main() -> None:
    app()
