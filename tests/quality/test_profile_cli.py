from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
import yaml
from typer.testing import CliRunner

from lockgate.cli import quality_extra_cmds
from lockgate.cli.quality_extra_cmds import group_scores, sparkline


@pytest.fixture
def app() -> typer.Typer:
    a = typer.Typer()

    @a.callback()
    def _root() -> None:  # a group, so command names are used as in `lockgate ...`
        pass

    quality_extra_cmds.register(a)
    return a


@pytest.fixture
def parquet(tmp_path: Path) -> Path:
    path = tmp_path / "orders.parquet"
    pq.write_table(
        pa.table(
            {
                "id": list(range(30)),
                "status": ["new", "paid", "shipped"] * 10,
                "amount": [float(i) * 2.5 for i in range(30)],
                "note": [None if i % 3 else "x" for i in range(30)],
            }
        ),
        path,
    )
    return path


def test_profile_json_html_and_output(app: typer.Typer, parquet: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    html, out = tmp_path / "r" / "report.html", tmp_path / "p.json"
    res = runner.invoke(
        app, ["profile", str(parquet), "--json", "--html", str(html), "--output", str(out)]
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["rows"] == 30
    assert [c["name"] for c in data["columns"]] == ["id", "status", "amount", "note"]
    assert json.loads(out.read_text()) == data
    assert ">status<" in html.read_text()


def test_profile_table_output(app: typer.Typer, parquet: Path) -> None:
    res = CliRunner().invoke(app, ["profile", str(parquet)])
    assert res.exit_code == 0, res.output
    assert "30 rows" in res.output and "status" in res.output


def test_profile_missing_target_is_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["profile", str(tmp_path / "nope*.csv")])
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["profile", "some_dataset", "--project", str(tmp_path)])
    assert res.exit_code == 2
    assert "not a lockgate project" in " ".join(res.output.split())  # Rich wraps lines


def test_suggest_writes_parsable_yaml(app: typer.Typer, parquet: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["suggest", str(parquet)])
    assert res.exit_code == 0, res.output
    checks = yaml.safe_load(res.stdout)["checks"]
    assert {"type": "unique", "column": "id"} in checks
    assert {
        "type": "accepted_values",
        "column": "status",
        "values": ["new", "paid", "shipped"],
    } in checks
    out = tmp_path / "checks.yaml"
    res = CliRunner().invoke(app, ["suggest", str(parquet), "-o", str(out)])
    assert res.exit_code == 0 and yaml.safe_load(out.read_text())["checks"] == checks


@pytest.fixture
def project(tmp_path: Path) -> Path:
    from lockgate.project.scaffold import init_project

    root = tmp_path / "proj"
    root.mkdir()
    init_project(root, name="shop")
    return root


def test_profile_and_suggest_a_dataset_of_a_project(app: typer.Typer, project: Path) -> None:
    from deltalake import write_deltalake

    from lockgate.project import load_project

    p = load_project(project)
    write_deltalake(str(p.warehouse_path / "customers"), pa.table({"customer_id": [1, 2, 3]}))
    res = CliRunner().invoke(app, ["profile", "customers", "-p", str(project), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["rows"] == 3
    res = CliRunner().invoke(app, ["suggest", "customers", "-p", str(project)])
    assert res.exit_code == 0 and "profile of customers" in res.stdout
    # a declared dataset without a table yet, and an unknown name
    res = CliRunner().invoke(app, ["profile", "raw_customers", "-p", str(project)])
    assert res.exit_code == 2 and "lockgate run" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["profile", "custmers", "-p", str(project)])
    assert res.exit_code == 2 and "customers" in res.output


def test_quality_history(app: typer.Typer, project: Path) -> None:
    from lockgate.project import load_project
    from lockgate.state import StateStore

    p = load_project(project)
    runs = []
    with StateStore.open(p.state_url) as store:
        for overall in (0.5, 0.75, 1.0):
            run_id = uuid.uuid4().hex
            runs.append(run_id)
            store.record_scores(
                run_id,
                p.name,
                "customers",
                {"completeness": overall, "validity": 1.0, "overall": overall},
            )
    res = CliRunner().invoke(app, ["quality", "customers", "-p", str(project), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [r["run_id"] for r in data["runs"]] == runs  # oldest first
    assert data["runs"][0]["scores"] == {"completeness": 0.5, "validity": 1.0, "overall": 0.5}

    res = CliRunner().invoke(app, ["quality", "customers", "-p", str(project), "--limit", "2"])
    assert res.exit_code == 0, res.output
    assert runs[2][:8] in res.output and runs[0][:8] not in res.output
    assert "▁█" in res.output
    res = CliRunner().invoke(app, ["quality", "customers_by_country", "-p", str(project)])
    assert res.exit_code == 0 and "no quality scores" in res.output
    res = CliRunner().invoke(app, ["quality", "nope", "-p", str(project)])
    assert res.exit_code == 2


def test_sparkline_and_grouping() -> None:
    assert sparkline([]) == ""
    assert sparkline([0.0, 1.0]) == "▁█"
    assert sparkline([0.5, 0.75, 1.0], lo=0.0, hi=1.0) == "▅▆█"
    assert sparkline([1.0, 1.0, 1.0]) == "███"

    class Rec:
        def __init__(self, run_id: str, dim: str, score: float, at: int) -> None:
            self.run_id, self.dimension, self.score, self.created_at = run_id, dim, score, at

    runs = group_scores(
        [Rec("b", "overall", 0.9, 2), Rec("b", "validity", 0.8, 2), Rec("a", "overall", 1.0, 1)]
    )
    assert [r["run_id"] for r in runs] == ["a", "b"]
    assert runs[1]["scores"] == {"overall": 0.9, "validity": 0.8}


def test_profile_cli_reports_skipped_malformed_csv_records(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,name\n1,a\n2,b,oops\n3,c\n")
    r = subprocess.run(
        [sys.executable, "-m", "lockgate", "profile", str(tmp_path / "a.csv"), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["rows"], out["rejected"], out["records"]) == (2, 1, 3)
    assert out["rejected_sample"][0]["line"] == 3
    assert "1 record(s) of" in r.stderr and "a.csv:3: expected 2 columns, found 3" in r.stderr
