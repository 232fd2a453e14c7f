"""The ``lockgate`` command.

Each group of commands lives in its own module exposing ``register(app)``.
"""

from __future__ import annotations

import importlib

import typer

from lockgate.cli.common import configure_logging

app = typer.Typer(
    name="lockgate",
    help="Quality-gated data pipelines: write, audit, publish into Delta Lake.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="show tracebacks and debug logs"),
) -> None:
    configure_logging(debug)


# command modules, each with register(app); kept in one list so there is one way to add one
_COMMAND_MODULES = (
    "lockgate.cli.project_cmds",  # init, validate, schema
    "lockgate.cli.run_cmds",  # run, runs, show, quarantine
    "lockgate.cli.quality_cmds",  # check
    "lockgate.cli.quality_extra_cmds",  # profile, suggest, quality
)

for _mod in _COMMAND_MODULES:
    try:
        importlib.import_module(_mod).register(app)
    except ModuleNotFoundError as _e:  # a command module not written yet
        if _e.name != _mod:
            raise


def main() -> None:
    app()
