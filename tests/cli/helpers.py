"""Small projects and snapshots for CLI tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from lockgate.cli.app import app
from lockgate.storage import DeltaStore
from tests.run.helpers import csv_source, make_project, sql

ORDERS = """\
order_id,customer_id,status,amount
1,10,placed,10.5
2,11,shipped,20.0
3,,placed,5.0
4,12,bogus,7.0
5,10,delivered,30.0
"""
MORE_ORDERS = ORDERS + "6,13,placed,12.0\n"

GOOD_PY = """\
import pyarrow as pa
import lockgate

@lockgate.transform(as_="arrow")
def enriched(orders):
    amounts = orders.column("amount").to_pylist()
    return orders.append_column("big", pa.array([a > 15 for a in amounts]))
"""

ORDER_CHECKS = [
    {"type": "not_null", "column": "customer_id"},
    {"type": "accepted_values", "column": "status", "values": ["placed", "shipped", "delivered"]},
]

# every published table of the standard project (quarantine tables included)
TABLES = ("orders", "orders__quarantine", "rev", "top", "enriched", "big_orders")

runner = CliRunner()


def datasets(
    *,
    rev_sql: str | None = None,
    rev_extra: dict[str, Any] | None = None,
    orders_path: str = "data/orders.csv",
) -> list[dict[str, Any]]:
    """orders (CSV source) → rev → top; orders → enriched (Python) → big_orders."""
    return [
        csv_source("orders", orders_path, checks=ORDER_CHECKS),
        sql(
            "rev",
            rev_sql
            or "select status, sum(amount) as revenue, count(*) as n from orders group by 1",
            write={"mode": "overwrite"},
            **(rev_extra or {}),
        ),
        sql("top", "select * from rev where revenue > 10", write={"mode": "overwrite"}),
        {"name": "enriched", "transform": {"python": "enriched"}, "write": {"mode": "overwrite"}},
        sql("big_orders", "select * from enriched where big", write={"mode": "overwrite"}),
    ]


def build(root: Path, **kw: Any) -> Path:
    return make_project(
        root,
        datasets(**kw),
        files={"data/orders.csv": ORDERS, "datasets/transforms.py": GOOD_PY},
    )


def rewrite(root: Path, **kw: Any) -> None:
    """Replace the dataset YAML (keeps lockgate.yaml, data and transforms)."""
    import yaml

    (root / "datasets" / "main.yaml").write_text(
        yaml.safe_dump({"datasets": datasets(**kw)}, sort_keys=False)
    )


def versions(root: Path) -> dict[str, int | None]:
    store = DeltaStore(root / "warehouse")
    return {t: store.version(t) for t in TABLES}


def cli(*args: str) -> Result:
    return runner.invoke(app, list(args))


def run_json(root: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    r = cli("run", "-p", str(root), "--json", *extra)
    return r.exit_code, json.loads(r.stdout)


def subprocess_cli(
    *args: str, cwd: Path | None = None, columns: str = "200"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": columns}
    return subprocess.run(
        [sys.executable, "-m", "lockgate", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )
