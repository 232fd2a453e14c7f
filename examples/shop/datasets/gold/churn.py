"""Gold: churn features per customer, as of the latest order date in the data.

The reference date is ``max(order_date)`` of the published orders, never the wall clock,
so the same inputs always give the same features (re-runs and backfills are reproducible).

Features (all windows end on ``as_of_date`` inclusive):

- ``orders_7d`` / ``orders_30d``: orders placed in the last 7 / 30 days (any status);
- ``total_spend_30d``: amount of the last 30 days' orders the shop kept (not cancelled,
  not returned);
- ``avg_order_value``: lifetime average of kept orders (NULL: never bought anything);
- ``lifetime_orders``, ``lifetime_spend``;
- ``days_since_last_order`` (NULL: never ordered);
- ``tickets_90d``: support tickets opened in the last 90 days;
- ``tenure_days``: days since signup;
- ``churn_label``: no order in the last 30 days.

Note: ``churn_label`` describes the customer *now*; to train a model that predicts it,
build the features as of 30 days earlier (point-in-time), or the label leaks from
``orders_30d``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockgate import transform

if TYPE_CHECKING:  # annotations only: a run that has nothing to do never starts DuckDB
    import duckdb

# Each relation is queried under a private name: the dataset names themselves
# (``orders``...) are views of the run and must not be shadowed.
AS_OF = "SELECT max(order_date) AS as_of_date FROM __lg_all_orders"

ORDER_STATS = """
SELECT
    customer_id,
    count(*) FILTER (WHERE order_date > as_of_date - 7)                 AS orders_7d,
    count(*) FILTER (WHERE order_date > as_of_date - 30)                AS orders_30d,
    coalesce(sum(amount) FILTER (
        WHERE order_date > as_of_date - 30 AND is_kept), 0)             AS total_spend_30d,
    count(*) FILTER (WHERE is_kept)                                     AS lifetime_orders,
    coalesce(sum(amount) FILTER (WHERE is_kept), 0)                     AS lifetime_spend,
    CAST(avg(amount) FILTER (WHERE is_kept) AS DECIMAL(12, 2))          AS avg_order_value,
    max(order_date)                                                     AS last_order_date
FROM (
    SELECT *, status NOT IN ('cancelled', 'returned') AS is_kept
    FROM __orders
    WHERE order_date <= as_of_date
)
GROUP BY customer_id
"""

TICKET_STATS = """
SELECT customer_id, count(*) AS tickets_90d
FROM __tickets
WHERE opened_date > as_of_date - 90 AND opened_date <= as_of_date
GROUP BY customer_id
"""

FEATURES = """
SELECT
    customer_id,
    as_of_date,
    coalesce(orders_7d, 0)                          AS orders_7d,
    coalesce(orders_30d, 0)                         AS orders_30d,
    coalesce(total_spend_30d, 0)                    AS total_spend_30d,
    coalesce(lifetime_orders, 0)                    AS lifetime_orders,
    coalesce(lifetime_spend, 0)                     AS lifetime_spend,
    avg_order_value,
    date_diff('day', last_order_date, as_of_date)   AS days_since_last_order,
    coalesce(tickets_90d, 0)                        AS tickets_90d,
    greatest(date_diff('day', signup_date, as_of_date), 0) AS tenure_days,
    coalesce(orders_30d, 0) = 0                     AS churn_label
FROM __customers
ORDER BY customer_id
"""


def _select(rel: duckdb.DuckDBPyRelation, name: str, sql: str) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` over ``rel`` (visible in it as ``name``); lazy, nothing is fetched."""
    result = rel.query(name, sql)
    assert result is not None, "a SELECT always gives a relation"
    return result


@transform
def customer_churn_features(
    orders: duckdb.DuckDBPyRelation,
    customers: duckdb.DuckDBPyRelation,
    tickets: duckdb.DuckDBPyRelation,
) -> duckdb.DuckDBPyRelation:
    """One row per customer in silver ``customers`` (also those who never ordered)."""
    as_of = _select(orders, "__lg_all_orders", AS_OF)  # one row: as_of_date
    order_stats = _select(orders.cross(as_of), "__orders", ORDER_STATS)
    ticket_stats = _select(tickets.cross(as_of), "__tickets", TICKET_STATS)
    joined = (
        customers.cross(as_of)
        .join(order_stats, "customer_id", how="left")
        .join(ticket_stats, "customer_id", how="left")
    )
    return _select(joined, "__customers", FEATURES)
