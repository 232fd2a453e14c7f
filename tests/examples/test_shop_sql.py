"""The shop example's SQL and Python transforms, run directly in DuckDB over generated files.

The gate is emulated with the error-severity checks of the silver YAML written as plain SQL,
so these tests prove the business logic independently of the engine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest
import sqlglot
import yaml
from sqlglot import exp

from tests.examples.conftest import DATASETS, bronze_connection, load_module

ORDERS = 8_000
KEPT = "status NOT IN ('cancelled', 'returned')"

# the error-severity checks of silver.yaml as WHERE clauses (what the gate publishes)
PUBLISHED_CUSTOMERS = (
    "customer_id IS NOT NULL AND country IN ('DE','FR','NL','ES','IT','IE','US','GB') "
    "AND updated_at >= signup_at"
)
PUBLISHED_ORDERS = (
    "order_id IS NOT NULL AND customer_id IS NOT NULL AND amount IS NOT NULL "
    "AND status IN ('placed','paid','shipped','delivered','returned','cancelled') "
    "AND currency IN ('EUR','USD','GBP') AND amount BETWEEN 0 AND 100000 "
    "AND (shipped_at IS NULL OR shipped_at >= ordered_at) "
    "AND customer_id IN (SELECT customer_id FROM customers)"
)
PUBLISHED_TICKETS = (
    "customer_id IS NOT NULL AND channel IN ('email','chat','phone','web') "
    "AND priority IN ('low','normal','high','urgent') "
    "AND customer_id IN (SELECT customer_id FROM customers)"
)


def _sql(name: str) -> str:
    layer = "gold" if name == "daily_revenue" else "silver"
    return (DATASETS / layer / f"{name}.sql").read_text()


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    # fetchall, not fetchone: a result left unfinished on the module's shared connection
    # makes the next test's relation query fail (ResourceInUseException) — whichever test
    # runs next on this worker, as xdist hands out tests one at a time
    rows = con.execute(sql).fetchall()
    assert len(rows) == 1, rows
    row = rows[0]
    return row[0] if len(row) == 1 else row


@pytest.fixture(scope="module")
def shop(
    gen: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[duckdb.DuckDBPyConnection, dict[str, Any]]]:
    """Initial load + one increment; silver built, gated (emulated), gold built."""
    out = tmp_path_factory.mktemp("shop_sql") / "data"
    gen.generate(out, ORDERS, seed=5, chunk_rows=2_000)
    gen.increment(out, 4, 2_000)
    manifest = json.loads((out / "_manifest.json").read_text())
    con = bronze_connection(out)
    for name, published in (
        ("customers", PUBLISHED_CUSTOMERS),
        ("orders", PUBLISHED_ORDERS),
        ("tickets", PUBLISHED_TICKETS),
    ):
        con.execute(f"CREATE TABLE staged_{name} AS {_sql(name)}")
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM staged_{name} WHERE {published}")
    con.execute(f"CREATE TABLE daily_revenue AS {_sql('daily_revenue')}")
    churn = load_module(DATASETS / "gold" / "churn.py", "shop_churn")
    rel = churn.customer_churn_features(
        con.table("orders"), con.table("customers"), con.table("tickets")
    )
    table = rel.arrow().read_all()
    con.register("churn_arrow", table)
    con.execute("CREATE TABLE churn AS SELECT * FROM churn_arrow")
    yield con, manifest
    con.close()


@pytest.mark.parametrize("path", sorted(DATASETS.rglob("*.sql")), ids=lambda p: p.name)
def test_sql_parses_and_reads_only_declared_datasets(path: Path) -> None:
    tree = sqlglot.parse_one(path.read_text(), read="duckdb")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    read = {t.name for t in tree.find_all(exp.Table)} - ctes
    declared = {
        d["name"]
        for y in DATASETS.rglob("*.yaml")
        for d in yaml.safe_load(y.read_text())["datasets"]
    }
    assert read and read <= declared


def test_project_loads_with_the_expected_dag() -> None:
    import lockgate

    project = lockgate.load_project(DATASETS.parent)
    assert set(project.datasets) == {
        "raw_customers", "raw_orders", "raw_tickets", "customers", "orders", "tickets",
        "daily_revenue", "customer_churn_features", "churn_feature_history",
    }  # fmt: skip
    assert set(project.deps["churn_feature_history"]) == {
        "raw_orders", "orders", "customers", "tickets",
    }  # fmt: skip
    assert set(project.features.views) == {"customer_spend", "customer_support"}
    assert set(project.features.services) == {"churn_model"}
    assert set(project.deps["customer_churn_features"]) == {"orders", "customers", "tickets"}
    assert project.deps["daily_revenue"] == ("orders",)
    assert project.datasets["orders"].write.mode == "merge"
    assert project.datasets["daily_revenue"].write.partition_by == ("order_month",)


def test_silver_orders_one_row_per_order_latest_version(
    shop: tuple[duckdb.DuckDBPyConnection, dict],
) -> None:
    con, _ = shop
    assert _one(con, "SELECT count(*) - count(DISTINCT order_id) FROM staged_orders") == 0
    # no order lost: every order id of bronze is in silver (before the gate)
    assert _one(con, "SELECT count(DISTINCT order_id) FROM raw_orders") == _one(
        con, "SELECT count(*) FROM staged_orders"
    )
    # the kept version is the newest one
    assert (
        _one(
            con,
            "SELECT count(*) FROM staged_orders s JOIN (SELECT order_id, max(updated_at) AS m "
            "FROM raw_orders GROUP BY order_id) r USING (order_id) WHERE s.updated_at <> r.m",
        )
        == 0
    )
    # status normalised: only the vocabulary, 'unknown' and NULL (from '') remain
    statuses = {s for (s,) in con.execute("SELECT DISTINCT status FROM staged_orders").fetchall()}
    assert statuses - {None, "unknown"} == {
        "placed", "paid", "shipped", "delivered", "returned", "cancelled",
    }  # fmt: skip
    assert _one(con, "SELECT count(*) FROM staged_orders WHERE order_month <> "
                     "date_trunc('month', order_date)") == 0  # fmt: skip


def test_defects_land_in_the_documented_checks(
    shop: tuple[duckdb.DuckDBPyConnection, dict],
) -> None:
    con, manifest = shop
    total = {
        k: sum(b["defects"][k] for b in manifest["batches"])
        for k in manifest["batches"][0]["defects"]
    }
    # row-level defects are never duplicated, so each check fails exactly the injected rows
    assert (
        _one(con, "SELECT count(*) FROM staged_orders WHERE customer_id IS NULL")
        == (total["null_customer_id"])
    )
    assert (
        _one(con, "SELECT count(*) FROM staged_orders WHERE amount < 0")
        == (total["negative_amount"])
    )
    assert _one(con, "SELECT count(*) FROM staged_orders WHERE status IS NULL "
                     "OR status = 'unknown'") == total["bad_status"]  # fmt: skip
    assert (
        _one(con, "SELECT count(*) FROM staged_orders WHERE shipped_at < ordered_at")
        == (total["shipped_before_ordered"])
    )
    # the relationship check fails orphans, and orders of quarantined customers
    orphans = _one(
        con,
        "SELECT count(*) FROM staged_orders WHERE customer_id NOT IN "
        "(SELECT customer_id FROM customers)",
    )
    assert orphans >= total["orphan_customer"]
    # late orders are published (warn only)
    assert (
        _one(con, "SELECT count(*) FROM orders WHERE ordered_at < updated_at - INTERVAL 7 DAY") > 0
    )
    # customers: normalised emails; the malformed ones are still published (warn)
    assert _one(con, "SELECT count(*) FROM customers WHERE email <> lower(trim(email))") == 0
    assert (
        _one(
            con,
            "SELECT count(*) FROM customers WHERE NOT regexp_matches(email, "
            r"'^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}$')",
        )
        == manifest["customers"]["bad_email"]
    )
    assert _one(con, "SELECT count(*) - count(DISTINCT customer_id) FROM staged_customers") == 0
    # tickets: legacy codes mapped, bad priorities quarantined
    assert _one(con, "SELECT count(*) FROM staged_tickets WHERE priority IN ('asap', "
                     "'whenever')") == manifest["tickets"]["bad_priority"]  # fmt: skip


def test_gold_revenue_reconciles_with_silver(
    shop: tuple[duckdb.DuckDBPyConnection, dict],
) -> None:
    con, _ = shop
    gold = con.execute(
        "SELECT sum(orders), sum(revenue), sum(gross_amount), sum(revenue_orders) "
        "FROM daily_revenue"
    ).fetchall()[0]
    silver = con.execute(
        f"SELECT count(*), sum(amount) FILTER (WHERE {KEPT}), sum(amount), "
        f"count(*) FILTER (WHERE {KEPT}) FROM orders"
    ).fetchall()[0]
    assert gold == silver
    assert _one(con, "SELECT count(*) - count(DISTINCT (order_date, currency)) "
                     "FROM daily_revenue") == 0  # fmt: skip
    row = con.execute(
        "SELECT bool_and(returned_rate BETWEEN 0 AND 1 AND cancelled_rate BETWEEN 0 AND 1), "
        "bool_and(revenue <= gross_amount), bool_and(revenue_orders <= orders), "
        "min(avg_order_value) > 0, bool_and(order_month = date_trunc('month', order_date)) "
        "FROM daily_revenue"
    ).fetchall()[0]
    assert row == (True, True, True, True, True)
    # per currency, the average order value is that of the kept orders
    per_currency = con.execute(
        "SELECT d.currency, sum(d.revenue) / sum(d.revenue_orders), "
        f"(SELECT avg(amount) FROM orders o WHERE o.currency = d.currency AND {KEPT}) "
        "FROM daily_revenue d GROUP BY d.currency"
    ).fetchall()
    assert len(per_currency) == 3
    for _, a, b in per_currency:
        assert abs(float(a) - float(b)) < 1e-6
        assert 20 < float(a) < 200  # a plausible basket for the generated lognormal amounts


def test_churn_features(shop: tuple[duckdb.DuckDBPyConnection, dict]) -> None:
    con, _ = shop
    assert _one(con, "SELECT count(*) FROM churn") == _one(con, "SELECT count(*) FROM customers")
    assert _one(con, "SELECT count(*) - count(DISTINCT customer_id) FROM churn") == 0
    row = con.execute(
        "SELECT min(least(orders_7d, orders_30d, total_spend_30d, lifetime_orders, "
        "lifetime_spend, tickets_90d, tenure_days)) >= 0, "
        "min(days_since_last_order) >= 0, min(avg_order_value) >= 0, "
        "bool_and(orders_7d <= orders_30d), bool_and(churn_label = (orders_30d = 0)), "
        "count(DISTINCT as_of_date) "
        "FROM churn"
    ).fetchall()[0]
    assert row == (True, True, True, True, True, 1)
    as_of = _one(con, "SELECT max(order_date) FROM orders")
    assert _one(con, "SELECT any_value(as_of_date) FROM churn") == as_of
    # totals agree with a direct computation over silver
    assert _one(con, "SELECT sum(total_spend_30d) FROM churn") == _one(
        con,
        f"SELECT sum(amount) FROM orders WHERE {KEPT} AND order_date > DATE '{as_of}' - 30",
    )
    assert _one(con, "SELECT sum(tickets_90d) FROM churn") == _one(
        con,
        f"SELECT count(*) FROM tickets WHERE opened_date > DATE '{as_of}' - 90 "
        f"AND opened_date <= DATE '{as_of}'",
    )
    # the generator makes some customers churn: both labels occur, churners are a minority
    rate = _one(con, "SELECT avg(churn_label::INT) FROM churn")
    assert 0.05 < rate < 0.6
    # churners write more tickets (the generator's unhappy customers)
    by_label = dict(
        con.execute("SELECT churn_label, avg(tickets_90d) FROM churn GROUP BY 1").fetchall()
    )
    assert by_label[True] > by_label[False]


def test_churn_is_deterministic(shop: tuple[duckdb.DuckDBPyConnection, dict]) -> None:
    con, _ = shop
    churn = load_module(DATASETS / "gold" / "churn.py", "shop_churn_again")
    again = (
        churn.customer_churn_features(
            con.table("orders"), con.table("customers"), con.table("tickets")
        )
        .arrow()
        .read_all()
    )
    assert again.equals(con.table("churn").arrow().read_all())
