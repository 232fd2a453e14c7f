"""The ``lockgate`` command.

Each group of commands lives in its own module exposing ``register(app)``.
"""

from __future__ import annotations

import functools
import importlib
import platform
from typing import TYPE_CHECKING, Any

import typer
import typer.main
from typer.core import TyperGroup

if TYPE_CHECKING:  # typer vendors click
    from typer._click.core import Command

from lockgate.cli.common import configure_logging, console

_GLOBAL_FLAGS = ("--debug",)
_GLOBAL_OPTIONS = ("--log-format",)


class _Root(TyperGroup):
    """The root command: global flags are accepted anywhere on the line
    (``lockgate run --debug`` as well as ``lockgate --debug run``), not after ``--``.

    Command modules are imported when one of their commands is invoked (``lockgate run``
    does not import the dashboard, the feature store or the profiler): see
    :data:`_COMMAND_MODULES`."""

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

    def list_commands(self, ctx: Any) -> list[str]:
        names = {n for _, commands in _COMMAND_MODULES for n in commands}
        for module, _ in _COMMAND_MODULES:  # a command not listed yet still shows
            names.update(_module_commands(module))
        return sorted(names | set(super().list_commands(ctx)))

    def get_command(self, ctx: Any, cmd_name: str) -> Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        listed = [m for m, commands in _COMMAND_MODULES if cmd_name in commands]
        for module in listed or [m for m, _ in _COMMAND_MODULES]:
            found = _module_commands(module).get(cmd_name)
            if found is not None:
                return found
        return None


@functools.cache
def _module_commands(module: str) -> dict[str, Command]:
    """The click commands command module ``module`` registers (imported now)."""
    sub = typer.Typer()
    importlib.import_module(module).register(sub)
    return dict(typer.main.get_group(sub).commands)


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


# command modules, each with register(app), and the commands each registers: kept in one
# list so there is one way to add one (tests/cli check the names against what is registered;
# a command missing here still works, found by importing every module)
_COMMAND_MODULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("lockgate.cli.project_cmds", ("init", "schema", "validate")),
    ("lockgate.cli.run_cmds", ("quarantine", "run", "runs", "show")),
    ("lockgate.cli.quality_cmds", ("check",)),
    ("lockgate.cli.quality_extra_cmds", ("profile", "quality", "suggest")),
    ("lockgate.cli.ops_cmds", ("backfill", "freshness", "prune", "replay", "serve")),
    ("lockgate.cli.stream_cmds", ("stream",)),
    ("lockgate.cli.cdc_cmds", ("cdc",)),
    ("lockgate.cli.ui_cmds", ("ui", "ui-token")),
    ("lockgate.cli.lineage_cmds", ("anomalies", "docs", "lineage", "why")),
    ("lockgate.cli.features_cmds", ("features",)),
    ("lockgate.cli.optimize_cmd", ("optimize",)),
)


def command_names() -> list[str]:
    """Every top-level command (imports every command module)."""
    root = typer.main.get_group(app)
    return root.list_commands(typer.Context(root))


def main() -> None:
    app()
