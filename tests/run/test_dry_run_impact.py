"""``lockgate run --dry-run`` after editing a SQL file: the edited dataset rebuilds because
its definition changed (the file is named), its downstream because the upstream publishes
first, everything else is skipped."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import lockgate
from lockgate.cli.app import app
from tests.run.helpers import csv_source, make_project


def _project(root: Path) -> Path:
    return make_project(
        root,
        [
            csv_source("raw", "data/raw.csv"),
            {"name": "clean", "transform": {"sql_file": "clean.sql"}},
            {"name": "daily", "transform": {"sql": "select count(*) as n from clean"}},
            {"name": "other", "transform": {"sql": "select id from raw"}},
        ],
        files={
            "data/raw.csv": "id,amount\n1,10\n2,20\n",
            "datasets/clean.sql": "select * from raw",
        },
    )


def test_an_edited_sql_file_lists_what_it_rebuilds(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert lockgate.run(root).ok
    cli = CliRunner()
    before = cli.invoke(app, ["run", "--dry-run", "-p", str(root)])
    assert before.exit_code == 0 and "nothing to rebuild" in before.output
    (root / "datasets" / "clean.sql").write_text("select id, amount * 2 as amount from raw\n")
    out = cli.invoke(app, ["run", "--dry-run", "-p", str(root), "--json"])
    assert out.exit_code == 0, out.output
    steps = {s["dataset"]: s for s in json.loads(out.output)}
    assert steps["raw"]["status"] == "noop" and steps["other"]["status"] == "noop"
    assert steps["clean"]["status"] == "planned"
    assert "definition changed (SQL file datasets/clean.sql" in steps["clean"]["reason"]
    assert steps["daily"]["status"] == "planned"
    assert steps["daily"]["reason"] == "upstream 'clean' will publish a new version"
    text = cli.invoke(app, ["run", "--dry-run", "-p", str(root)]).output
    assert "clean: definition changed (SQL file datasets/clean.sql" in text
    assert "rebuilds downstream: daily" in text and "other" not in text.split("clean:")[1]
    # the dry run changed nothing: the same plan again
    again = json.loads(cli.invoke(app, ["run", "--dry-run", "-p", str(root), "--json"]).output)
    assert [s["status"] for s in again] == [s["status"] for s in steps.values()]


def test_a_new_source_file_names_the_input(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert lockgate.run(root).ok
    (root / "data" / "raw.csv").write_text("id,amount\n1,10\n2,20\n3,30\n")
    out = CliRunner().invoke(app, ["run", "--dry-run", "-p", str(root), "--json"])
    steps = {s["dataset"]: s for s in json.loads(out.output)}
    assert steps["raw"]["reason"].startswith("new input: source "), steps["raw"]
    assert {steps[d]["reason"] for d in ("clean", "other")} == {
        "upstream 'raw' will publish a new version"
    }
