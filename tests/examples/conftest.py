"""Fixtures for the shop example: its generator loaded from the example folder, and a DuckDB
connection with bronze views over generated files (what the sources would stage)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import duckdb
import pytest

SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop"
DATASETS = SHOP / "datasets"

ORDER_TYPES = {
    "order_id": "BIGINT",
    "customer_id": "BIGINT",
    "status": "VARCHAR",
    "amount": "DECIMAL(12,2)",
    "currency": "VARCHAR",
    "ordered_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
    "shipped_at": "TIMESTAMP",
}
CUSTOMER_TYPES = {
    "customer_id": "BIGINT",
    "email": "VARCHAR",
    "name": "VARCHAR",
    "country": "VARCHAR",
    "signup_at": "TIMESTAMP",
    "updated_at": "TIMESTAMP",
}
TICKET_TYPES = {
    "ticket_id": "BIGINT",
    "customer_id": "BIGINT",
    "opened_at": "TIMESTAMP",
    "channel": "VARCHAR",
    "priority": "VARCHAR",
    "subject": "VARCHAR",
}


def load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def gen() -> ModuleType:
    return load_module(SHOP / "generate.py", "shop_generate")


def bronze_connection(data: Path) -> duckdb.DuckDBPyConnection:
    """Tables named like the bronze datasets. Records the sources would reject (the ragged
    line, unparseable amounts, the broken JSON line) are skipped here."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE raw_orders AS SELECT * FROM read_csv($p, header = true, "
        "ignore_errors = true, types = $t)",
        {"p": str(data / "orders" / "*.csv"), "t": ORDER_TYPES},
    )
    con.execute(
        "CREATE TABLE raw_customers AS SELECT * FROM read_csv($p, header = true, types = $t)",
        {"p": str(data / "customers.csv"), "t": CUSTOMER_TYPES},
    )
    con.execute(
        "CREATE TABLE raw_tickets AS SELECT * FROM read_json($p, format = 'newline_delimited', "
        "ignore_errors = true, columns = $t) WHERE ticket_id IS NOT NULL",
        {"p": str(data / "tickets.ndjson"), "t": TICKET_TYPES},
    )
    return con
