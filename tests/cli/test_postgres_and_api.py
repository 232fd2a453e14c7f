"""The whole run loop with its state on real PostgreSQL; the Python API."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import lockgate
from tests.cli.helpers import GOOD_PY, MORE_ORDERS, ORDERS, cli, datasets
from tests.run.helpers import make_project


@pytest.mark.postgres
def test_run_loop_on_postgres_state(tmp_path: Path, pg_url: str) -> None:
    root = make_project(
        tmp_path / "p",
        datasets(),
        files={"data/orders.csv": ORDERS, "datasets/transforms.py": GOOD_PY},
        config={"state": pg_url},
    )
    assert not list(root.rglob("*.db")) and not list(root.rglob("*.sqlite"))
    first = cli("run", "-p", str(root), "--json")
    assert first.exit_code == 0, first.output
    second = cli("run", "-p", str(root), "--json")
    assert second.exit_code == 0, second.output
    assert {s["status"] for s in json.loads(second.stdout)["steps"]} == {"noop"}
    assert not list((root / ".lockgate").rglob("*.db"))  # nothing fell back to SQLite
    runs = json.loads(cli("runs", "-p", str(root), "--json").stdout)
    assert [r["seq"] for r in runs] == [2, 1]
    assert [r["status"] for r in runs] == ["success", "success"]
    assert runs[1]["summary"]["rows_quarantined"] == 2 and runs[0]["summary"]["rows_out"] == 0
    one = json.loads(cli("runs", runs[1]["run_id"][:8], "-p", str(root), "--json").stdout)
    assert {s["dataset"] for s in one["steps"]} == {
        "orders",
        "rev",
        "top",
        "enriched",
        "big_orders",
    }
    show = json.loads(cli("show", "orders", "-p", str(root), "--json").stdout)
    assert show["last_steps"][0]["status"] == "noop" and show["checks"]


def test_python_api(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "p",
        datasets(),
        files={"data/orders.csv": ORDERS, "datasets/transforms.py": GOOD_PY},
    )
    project = lockgate.load_project(root)
    assert isinstance(project, lockgate.Project)
    assert set(project.datasets) == {"orders", "rev", "top", "enriched", "big_orders"}
    assert project.deps["top"] == ("rev",)

    planned = lockgate.plan(project, select=["orders+"])
    assert isinstance(planned, lockgate.Plan)
    assert all(isinstance(s, lockgate.StepResult) for s in planned.results())
    assert {s.dataset for s in planned.steps} == set(project.datasets)
    assert {s.status for s in planned.steps} == {lockgate.StepStatus.PLANNED}
    assert {s.status for s in planned.results()} == {lockgate.StepStatus.PLANNED}

    res = lockgate.run(project, select=["+rev"])
    assert isinstance(res, lockgate.RunResult) and res.status == lockgate.RunStatus.SUCCESS
    assert [s.dataset for s in res.steps] == ["orders", "rev"]
    assert res.step("orders").rows_quarantined == 2

    t = lockgate.read(project, "orders")
    assert isinstance(t, pa.Table) and sorted(t.column("order_id").to_pylist()) == [1, 2, 5]
    df = lockgate.read(root, "rev", as_="pandas")
    assert isinstance(df, pd.DataFrame)
    assert dict(zip(df["status"], df["n"], strict=True)) == {
        "placed": 1,
        "shipped": 1,
        "delivered": 1,
    }
    q = lockgate.read(project, "orders", quarantine=True, as_="polars")
    assert isinstance(q, pl.DataFrame) and q.height == 2

    # a second batch: time travel reads the first version
    (root / "data" / "orders.csv").write_text(MORE_ORDERS)
    res2 = lockgate.run(str(root), select=["orders"])
    assert res2.step("orders").output_version == 1
    # default write mode is append (no incremental cursor): the batch's 4 good rows are added
    assert lockgate.read(project, "orders").num_rows == 3 + 4
    v0 = lockgate.read(project, "orders", version=0, as_="polars", columns=["order_id"])
    assert isinstance(v0, pl.DataFrame) and v0.columns == ["order_id"]
    assert sorted(v0["order_id"].to_list()) == [1, 2, 5]

    runs = lockgate.runs(project)
    assert [r.run_id for r in runs] == [res2.run_id, res.run_id]
    assert len(lockgate.runs(project, limit=1)) == 1

    assert [s.status for s in lockgate.plan(project, select=["orders"]).steps] == [
        lockgate.StepStatus.NOOP
    ]
    with pytest.raises(lockgate.ConfigError, match="did you mean 'orders'"):
        lockgate.run(project, select=["ordrs"])
