"""The ``lockgate`` command imports a command module only when one of its commands runs;
the table of which module registers which command must match what the modules register."""

from __future__ import annotations

import importlib
import subprocess
import sys

import typer
import typer.main

from lockgate.cli.app import _COMMAND_MODULES, command_names


def test_the_command_table_lists_exactly_what_each_module_registers() -> None:
    for module, listed in _COMMAND_MODULES:
        sub = typer.Typer()
        importlib.import_module(module).register(sub)
        registered = set(typer.main.get_group(sub).commands)
        assert registered == set(listed), module


def test_help_lists_every_command_of_every_module() -> None:
    names = set(command_names())
    assert {c for _, commands in _COMMAND_MODULES for c in commands} <= names
    assert {"run", "show", "ui", "features", "stream"} <= names


def test_a_command_starts_without_importing_the_other_command_modules() -> None:
    code = (
        "import sys; sys.argv = ['lockgate', 'validate', '--help']\n"
        "from lockgate.cli.app import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('lockgate.ui.app', 'lockgate.features.offline', "
        "'lockgate.quality.profile', 'lockgate.cli.run_cmds', 'pyarrow', 'fastapi') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout[-2000:]
