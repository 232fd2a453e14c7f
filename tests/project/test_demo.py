"""`make demo` ends by saying where the tables are and what to try next."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from lockgate.cli.app import command_names
from lockgate.project import load_project

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_prints_where_the_tables_are_and_what_to_try() -> None:
    recipe = subprocess.run(
        ["make", "-n", "demo"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    echoed = [
        shlex.split(line)[1] if len(shlex.split(line)) > 1 else ""
        for line in recipe.splitlines()
        if line.startswith("echo ")
    ]
    text = "\n".join(echoed)
    project = load_project(REPO / "examples" / "shop")
    assert f"examples/shop/{project.config.warehouse}/" in text
    assert "examples/shop/.lockgate/state.db" in text  # the example's state: sqlite URL
    assert project.config.state == "sqlite:///.lockgate/state.db"
    assert "bin/activate" in text and "cd examples/shop" in text
    tried = [shlex.split(t.split("#")[0]) for t in echoed if t.strip().startswith("lockgate ")]
    assert len(tried) >= 3 and ["lockgate", "show", "orders"] in tried
    commands = set(command_names())
    for cmd in tried:
        assert cmd[1] in commands, cmd  # a real subcommand ...
        if cmd[1] == "features":  # ... of a feature service of the example
            assert {*project.features.services, *project.features.views} >= {cmd[3]}, cmd
            continue
        assert cmd[2] in project.datasets, cmd  # ... of a dataset of the example
