from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from lockgate.errors import UsageError
from lockgate.project import init_project, load_project


def test_init_writes_a_project_that_loads_and_runs(tmp_path: Path) -> None:
    root = tmp_path / "my-shop"
    written = init_project(root)
    rel = {p.relative_to(root).as_posix() for p in written}
    assert {"lockgate.yaml", ".gitignore", "data/customers.csv"} <= rel
    assert "warehouse/" in (root / ".gitignore").read_text()

    project = load_project(root)
    assert project.name == "my_shop"
    assert list(project.datasets) == ["raw_customers", "customers", "customers_by_country"]
    assert project.deps["customers_by_country"] == ("customers",)
    customers = project.datasets["customers"]
    assert sorted(c.type for c in customers.checks) == ["accepted_values", "not_null", "unique"]

    # the SQL and Python transforms really run over the sample data
    con = duckdb.connect()
    csv = str(root / "data" / "customers.csv")
    con.read_csv(csv).create("raw_customers")
    con.execute(f"CREATE TABLE customers AS {project.sql_text('customers')}").fetchall()
    assert con.execute("SELECT count(*) FROM customers WHERE email IS NULL").fetchall() == [(1,)]
    tf = project.python_transform("customers_by_country")
    out = tf.func(con.table("customers")).order("country").fetchall()
    assert ("GB", 2) in out and sum(n for _, n in out) == 7


def test_init_scaffolds_the_documented_style_and_the_project_runs(tmp_path: Path) -> None:
    """Same style as the README and the example: the source's schema under source.columns,
    `from lockgate import transform`; and `lockgate validate` + `lockgate run` succeed."""
    import yaml
    from typer.testing import CliRunner

    import lockgate
    from lockgate.cli.app import app

    root = tmp_path / "p"
    init_project(root)
    spec = yaml.safe_load((root / "datasets" / "customers.yaml").read_text())
    raw = next(d for d in spec["datasets"] if d["name"] == "raw_customers")
    assert "columns" not in raw and raw["source"]["columns"]["customer_id"] == "BIGINT"
    assert "from lockgate import transform\n" in (root / "datasets" / "customers.py").read_text()

    cli = CliRunner()
    r = cli.invoke(app, ["validate", "-p", str(root)])
    assert r.exit_code == 0, r.output
    r = cli.invoke(app, ["run", "-p", str(root), "--json"])
    assert r.exit_code == 0, r.output
    project = lockgate.load_project(root)
    counts = lockgate.read(project, "customers_by_country", as_="arrow").to_pylist()
    assert sum(row["customers"] for row in counts) == 3  # 7 rows, 4 quarantined
    bad = lockgate.read(project, "customers", quarantine=True, as_="arrow")
    assert bad.num_rows == 4


def test_init_refuses_to_overwrite_a_project(tmp_path: Path) -> None:
    init_project(tmp_path, name="one")
    with pytest.raises(UsageError, match="already exists"):
        init_project(tmp_path, name="two")
    assert "name: one" in (tmp_path / "lockgate.yaml").read_text()


def test_init_rejects_bad_names(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="invalid project name"):
        init_project(tmp_path, name="my shop")


@pytest.mark.parametrize(
    ("folder", "expected"),
    [("café-shop", "caf_shop"), ("2024 sales", "p_2024_sales"), ("x" * 100, "x" * 63)],
)
def test_init_derives_a_valid_project_name_from_any_folder(
    tmp_path: Path, folder: str, expected: str
) -> None:
    root = tmp_path / folder
    init_project(root)
    assert load_project(root).name == expected
