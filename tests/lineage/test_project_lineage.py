"""Column lineage of a whole project, the ``lockgate lineage`` command and impact analysis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lockgate.errors import ConfigError
from lockgate.lineage import ColumnRef, build_lineage, impact, lineage_report
from lockgate.project import load_project
from tests.cli.helpers import cli
from tests.lineage.helpers import lineage_project
from tests.run.helpers import csv_source, make_project, sql


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return lineage_project(tmp_path / "p")


def nodes(tree: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {n["node"]: n for n in tree}


def test_each_kind_of_dataset_gets_its_lineage_status(project_dir: Path) -> None:
    g = build_lineage(load_project(project_dir))
    status = {n: d.status for n, d in g.datasets.items()}
    assert status == {
        "raw": "leaf",
        "clean": "sql",
        "daily": "sql",
        "feat": "declared",
        "on_feat": "sql",
        "opaque_py": "opaque",
    }
    assert g.datasets["clean"].columns == ("id", "amount_eur", "status")
    assert "declares no column lineage" in g.datasets["opaque_py"].note
    # nothing is guessed for the opaque transform
    assert not any(e.target.dataset == "opaque_py" for e in g.edges)
    # lineage flows through a declared Python transform into SQL over it
    up = {str(e.source) for e in g.upstream_edges(ColumnRef("on_feat", "double_score"))}
    assert up == {"feat.score"}
    assert {str(e.source) for e in g.upstream_edges(ColumnRef("feat", "score"))} == {
        "clean.amount_eur"
    }


def test_cli_json_has_the_documented_shape(project_dir: Path) -> None:
    r = cli("lineage", "clean.amount_eur", "-p", str(project_dir), "--json")
    assert r.exit_code == 0, r.output
    tree = json.loads(r.stdout)
    assert tree["node"] == "clean.amount_eur"
    up = nodes(tree["upstream"])
    assert up["raw.amount"]["kind"] == "DIRECT"
    assert up["raw.amount"]["subtype"] == "TRANSFORMATION"
    assert up["raw.amount"]["transformation"] == "raw.amount * 1.1"
    assert up["raw.amount"]["upstream"] == []
    assert (up["raw.status"]["kind"], up["raw.status"]["subtype"]) == ("INDIRECT", "FILTER")
    down = nodes(tree["downstream"])
    assert down["daily.total"]["subtype"] == "AGGREGATION"
    assert nodes(down["feat.score"]["downstream"])["on_feat.double_score"]["kind"] == "DIRECT"
    assert set(tree["impact"]["datasets"]) == {"daily", "feat", "on_feat"}


def test_downstream_impact_lists_datasets_columns_and_checks(project_dir: Path) -> None:
    report = lineage_report(load_project(project_dir), "raw.amount", direction="downstream")
    assert "upstream" not in report
    imp = report["impact"]
    assert isinstance(imp, dict)
    assert imp["datasets"] == ["clean", "daily", "feat", "on_feat"]
    cols = {c["node"] for c in imp["columns"]}
    assert cols == {"clean.amount_eur", "daily.total", "feat.score", "on_feat.double_score"}
    checks = {(c["dataset"], c["check"]) for c in imp["checks"]}
    assert checks == {
        ("raw", "amount_not_null"),
        ("clean", "amount_eur_between"),
        ("daily", "total_between"),
    }
    assert imp["opaque"] == ["opaque_py"]  # it reads clean but declares nothing


def test_a_filter_column_impacts_every_output_column(project_dir: Path) -> None:
    imp = impact(build_lineage(load_project(project_dir)), ColumnRef("raw", "status"))
    cols = {c["node"]: c["subtype"] for c in imp.columns}
    assert cols["clean.id"] == "FILTER"
    assert cols["clean.status"] == "IDENTITY"


def test_depth_limits_the_walk(project_dir: Path) -> None:
    tree = lineage_report(load_project(project_dir), "raw.amount", direction="downstream", depth=1)
    down = tree["downstream"]
    assert isinstance(down, list)
    assert [n["node"] for n in down] == ["clean.amount_eur"]
    assert down[0]["downstream"] == []


def test_dataset_level_tree(project_dir: Path) -> None:
    r = cli("lineage", "feat", "-p", str(project_dir), "--json")
    tree = json.loads(r.stdout)
    assert [n["node"] for n in tree["upstream"]] == ["clean"]
    assert tree["upstream"][0]["kind"] == "DATASET"
    assert [n["node"] for n in tree["upstream"][0]["upstream"]] == ["raw"]
    assert [n["node"] for n in tree["downstream"]] == ["on_feat"]


def test_terminal_tree_and_impact(project_dir: Path) -> None:
    r = cli("lineage", "raw.amount", "--downstream", "-p", str(project_dir))
    assert r.exit_code == 0, r.output
    assert "clean.amount_eur" in r.output and "DIRECT/TRANSFORMATION" in r.output
    assert "impact: 4 datasets, 4 columns, 3 checks" in r.output
    assert "may depend (no column lineage): opaque_py" in r.output
    r = cli("lineage", "opaque_py", "-p", str(project_dir))
    assert "(opaque)" in r.output


def test_unknown_names_get_did_you_mean(project_dir: Path) -> None:
    r = cli("lineage", "clean.amount_euro", "-p", str(project_dir))
    assert r.exit_code != 0
    assert "no column 'amount_euro'" in r.output and "amount_eur" in r.output
    r = cli("lineage", "claen", "-p", str(project_dir))
    assert r.exit_code != 0 and "clean" in r.output
    r = cli("lineage", "clean", "--upstream", "--downstream", "-p", str(project_dir))
    assert r.exit_code != 0


def test_column_names_match_ignoring_case_and_keep_their_spelling(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        [
            csv_source("src", "data/s.csv", columns={"OrderID": "BIGINT", "Montant €": "DOUBLE"}),
            sql("t", 'select orderid, "montant €" * 2 as "Double €" from src'),
        ],
        files={"data/s.csv": "OrderID,Montant €\n1,2\n"},
    )
    g = build_lineage(load_project(root))
    assert g.datasets["t"].columns == ("OrderID", "Double €")
    up = {str(e.source) for e in g.upstream_edges(g.column("t", "double €"))}
    assert up == {"src.Montant €"}


def test_cycles_cannot_reach_lineage_and_diamonds_end(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cycle"):
        load_project(
            make_project(
                tmp_path / "cyc",
                [sql("a", "select * from b"), sql("b", "select * from a")],
            )
        )
    root = make_project(
        tmp_path / "dia",
        [
            csv_source("s", "data/s.csv", columns={"x": "BIGINT"}),
            sql("l", "select x from s"),
            sql("r", "select x from s"),
            sql("j", "select l.x from l join r on l.x = r.x"),
        ],
        files={"data/s.csv": "x\n1\n"},
    )
    tree = lineage_report(load_project(root), "j.x", direction="upstream")
    flat = json.dumps(tree)
    assert flat.count('"node": "s.x"') == 2  # via l (direct) and via r (join key)
    assert '"repeated": true' in flat


def test_python_lineage_must_name_dataset_columns(tmp_path: Path) -> None:
    bad = """\
import lockgate

@lockgate.transform(lineage={"score": "amount_eur"})
def feat(clean):
    return clean
"""
    root = make_project(
        tmp_path / "p",
        [
            csv_source("clean", "data/c.csv", columns={"amount_eur": "DOUBLE"}),
            {"name": "feat", "transform": {"python": "feat"}},
        ],
        files={"data/c.csv": "amount_eur\n1\n", "datasets/t.py": bad},
    )
    with pytest.raises(ConfigError, match=r"dataset\.column"):
        load_project(root)


def test_sql_reading_a_dataset_not_published_yet_uses_its_sql(tmp_path: Path) -> None:
    """Nothing has run: the schemas come from declarations and the SQL itself."""
    root = lineage_project(tmp_path / "p")
    assert not (root / "warehouse").exists()
    g = build_lineage(load_project(root))
    assert g.datasets["daily"].columns == ("status", "total")
