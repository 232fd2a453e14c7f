from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from lockgate.cli.app import app

runner = CliRunner()


def test_init_then_validate(tmp_path: Path) -> None:
    r = runner.invoke(app, ["init", str(tmp_path / "p"), "--name", "demo"])
    assert r.exit_code == 0, r.output
    assert f"lockgate quarantine customers -p {tmp_path / 'p'}" in r.output
    r = runner.invoke(app, ["validate", "-p", str(tmp_path / "p")])
    assert r.exit_code == 0, r.output
    assert "3 datasets, no problems" in r.output
    r = runner.invoke(app, ["init", str(tmp_path / "p")])
    assert r.exit_code == 2


def test_validate_lists_problems_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "datasets").mkdir()
    (tmp_path / "lockgate.yaml").write_text("name: demo\n")
    (tmp_path / "datasets" / "a.yaml").write_text(
        "datasets:\n  - name: a\n    transform: {sql: select * from zz}\n"
    )
    r = runner.invoke(app, ["validate", "-p", str(tmp_path)])
    assert r.exit_code == 2
    assert "datasets/a.yaml" in r.output and "unknown dataset 'zz'" in r.output
    r = runner.invoke(app, ["validate", "-p", str(tmp_path), "--json"])
    assert r.exit_code == 2
    (p,) = json.loads(r.stdout)
    assert (
        p["file"] == "datasets/a.yaml"
        and p["line"] == 3
        and set(p) == {"file", "line", "column", "message", "hint"}
    )


def test_validate_without_project(tmp_path: Path) -> None:
    r = runner.invoke(app, ["validate", "-p", str(tmp_path), "--json"])
    assert r.exit_code == 2
    assert "lockgate init" in json.loads(r.stdout)[0]["hint"]


def test_schema_command(tmp_path: Path) -> None:
    r = runner.invoke(app, ["schema"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["$schema"].endswith("2020-12/schema")
    out = tmp_path / "s.json"
    r = runner.invoke(app, ["schema", "--kind", "datasets", "--output", str(out)])
    assert r.exit_code == 0
    assert "DatasetsFile" in json.loads(out.read_text())["$ref"]


def test_debug_is_accepted_after_the_subcommand(tmp_path: Path, monkeypatch: Any) -> None:
    """`lockgate validate --debug` shows the traceback of an unexpected error, like
    `lockgate --debug validate`; without --debug it is one line and exit 1."""
    import lockgate.cli.project_cmds as cmds

    def boom(path: object, **kwargs: object) -> None:
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cmds, "load_project", boom)
    r = runner.invoke(app, ["validate", "-p", str(tmp_path)])
    assert r.exit_code == 1 and "unexpected RuntimeError: kaboom" in r.output
    assert "--debug" in r.output  # the hint
    for args in (["validate", "--debug", "-p", str(tmp_path)], ["--debug", "validate"]):
        r = runner.invoke(app, args)
        # the traceback is printed (through the redacting console), then exit 1
        assert r.exit_code == 1, (args, r.output)
        assert "Traceback" in r.output and "RuntimeError: kaboom" in r.output, (args, r.output)
        assert "run again with --debug" not in r.output
    # after `--`, --debug is an argument, not the global flag
    r = runner.invoke(app, ["validate", "--", "--debug"])
    assert r.exit_code == 2 and "extra argument" in r.output


def test_version() -> None:
    import lockgate

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0
    assert r.output.startswith(f"lockgate {lockgate.__version__} (Python ")
    assert "DuckDB" in r.output
