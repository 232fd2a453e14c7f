"""examples/postgres_orders: valid as shipped, and runs end to end against PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import lockgate
from lockgate.project import validate_project

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "postgres_orders"


def test_example_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_DB_URL", "postgresql://postgres@127.0.0.1:5432/unused")
    assert validate_project(EXAMPLE) == []


@pytest.mark.postgres
def test_example_runs(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    psycopg = pytest.importorskip("psycopg")
    url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((EXAMPLE / "setup.sql").read_text())
    root = tmp_path / "example"
    shutil.copytree(EXAMPLE, root)
    monkeypatch.setenv("ORDERS_DB_URL", url)
    result = lockgate.run(root)
    assert result.ok, result
    orders = result.steps[0] if result.steps[0].dataset == "orders" else result.steps[1]
    assert orders.rows_in == 1000 == orders.rows_out
    revenue = lockgate.read(root, "daily_revenue")
    assert sum(revenue.column("orders").to_pylist()) == 1000
