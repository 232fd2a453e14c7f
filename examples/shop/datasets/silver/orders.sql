-- Silver orders: one row per order, typed and normalised; the latest version wins.
--
-- Bronze keeps every exported version of an order (a status change is exported again with
-- a later updated_at, and some exports repeat lines verbatim). Here:
--   * status is trimmed and lower-cased ('SHIPPED', ' Delivered ' -> 'shipped', 'delivered');
--     an empty status becomes NULL (caught by status_not_null);
--   * currency codes are upper-cased;
--   * per order_id only the newest version is kept (ties: the one that progressed furthest,
--     i.e. with a shipped_at);
--   * order_date / order_month are derived for reporting.
-- Rows that break a rule (missing customer, negative amount, unknown status, shipped before
-- ordered, customer not in silver customers) are quarantined by the checks in orders.yaml.
WITH normalised AS (
    SELECT
        order_id,
        customer_id,
        NULLIF(lower(trim(status)), '')  AS status,
        amount,
        upper(trim(currency))            AS currency,
        ordered_at,
        shipped_at,
        updated_at
    FROM raw_orders
),

latest AS (
    SELECT *
    FROM normalised
    QUALIFY row_number() OVER (
        PARTITION BY order_id
        ORDER BY updated_at DESC, shipped_at DESC NULLS LAST, status
    ) = 1
)

SELECT
    order_id,
    customer_id,
    status,
    amount,
    currency,
    ordered_at,
    shipped_at,
    updated_at,
    CAST(ordered_at AS DATE)                           AS order_date,
    CAST(date_trunc('month', ordered_at) AS DATE)      AS order_month,
    -- hours from order to shipment; NULL while not shipped
    round(date_diff('minute', ordered_at, shipped_at) / 60.0, 1) AS hours_to_ship
FROM latest
