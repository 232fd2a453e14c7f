-- The churn features week by week, as they were known at each weekly snapshot: the history a
-- training set is joined to point-in-time (see features.yaml).
--
--   snapshot_at   midnight starting each Monday, from the first week of the data up to the
--                 newest order record; a snapshot sees only what was recorded before it
--   spend_30d     amounts of the orders placed in the 30 days before the snapshot (any
--                 status: an order's status changes later, its amount does not), as DOUBLE
--   orders_30d    those orders' count
--   tickets_90d   support tickets opened in the 90 days before the snapshot
--
-- An order counts from when it was first recorded (its first version in bronze), not from
-- when it was placed: an order recorded late never leaks into earlier snapshots, and a new
-- export never changes a past snapshot.
WITH recorded AS (
    SELECT order_id, min(updated_at) AS recorded_at
    FROM raw_orders
    GROUP BY order_id
),

known_orders AS (
    SELECT o.customer_id, o.ordered_at, o.amount, r.recorded_at
    FROM orders AS o
    JOIN recorded AS r ON r.order_id = o.order_id
),

bounds AS (
    SELECT
        date_trunc('week', min(recorded_at)) + INTERVAL 7 DAY AS first_at,
        max(recorded_at) AS last_at
    FROM known_orders
),

snapshots AS (
    SELECT unnest(generate_series(first_at, last_at, INTERVAL 7 DAY)) AS snapshot_at
    FROM bounds
    WHERE first_at <= last_at
),

grid AS (
    SELECT c.customer_id, s.snapshot_at
    FROM customers AS c
    CROSS JOIN snapshots AS s
    WHERE c.signup_at < s.snapshot_at
),

spend AS (
    SELECT
        g.customer_id,
        g.snapshot_at,
        count(o.amount)              AS orders_30d,
        CAST(coalesce(sum(o.amount), 0) AS DOUBLE) AS spend_30d  -- a model input: DOUBLE
    FROM grid AS g
    LEFT JOIN known_orders AS o
        ON o.customer_id = g.customer_id
        AND o.ordered_at >= g.snapshot_at - INTERVAL 30 DAY
        AND o.ordered_at < g.snapshot_at
        AND o.recorded_at < g.snapshot_at
    GROUP BY g.customer_id, g.snapshot_at
),

support AS (
    SELECT g.customer_id, g.snapshot_at, count(t.ticket_id) AS tickets_90d
    FROM grid AS g
    LEFT JOIN tickets AS t
        ON t.customer_id = g.customer_id
        AND t.opened_at >= g.snapshot_at - INTERVAL 90 DAY
        AND t.opened_at < g.snapshot_at
    GROUP BY g.customer_id, g.snapshot_at
)

SELECT
    s.customer_id,
    s.snapshot_at,
    s.spend_30d,
    s.orders_30d,
    t.tickets_90d
FROM spend AS s
JOIN support AS t ON t.customer_id = s.customer_id AND t.snapshot_at = s.snapshot_at
ORDER BY s.snapshot_at, s.customer_id
