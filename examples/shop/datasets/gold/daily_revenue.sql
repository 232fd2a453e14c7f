-- Gold: revenue per day and currency (amounts are never converted between currencies).
--
--   orders          every order placed that day (any status)
--   revenue_orders  orders the shop keeps money for: not cancelled and not returned
--   revenue         sum of their amounts
--   gross_amount    sum of all amounts, before cancellations and returns
--   avg_order_value revenue / revenue_orders
--   customers       distinct customers who ordered that day
--   returned_rate / cancelled_rate   share of the day's orders
--
-- Written with overwrite_partitions on order_month: a run replaces exactly the months it
-- recomputes, so a late order for last month rewrites last month and nothing else.
WITH kept AS (
    SELECT
        *,
        status NOT IN ('cancelled', 'returned') AS is_revenue
    FROM orders
)

SELECT
    order_month,
    order_date,
    currency,
    count(*)                                                    AS orders,
    count(*) FILTER (WHERE is_revenue)                          AS revenue_orders,
    coalesce(sum(amount) FILTER (WHERE is_revenue), 0)          AS revenue,
    sum(amount)                                                 AS gross_amount,
    CAST(
        sum(amount) FILTER (WHERE is_revenue)
        / nullif(count(*) FILTER (WHERE is_revenue), 0)
        AS DECIMAL(12, 2)
    )                                                           AS avg_order_value,
    count(DISTINCT customer_id)                                 AS customers,
    round(count(*) FILTER (WHERE status = 'returned') / count(*), 4)  AS returned_rate,
    round(count(*) FILTER (WHERE status = 'cancelled') / count(*), 4) AS cancelled_rate
FROM kept
GROUP BY order_month, order_date, currency
ORDER BY order_date, currency
