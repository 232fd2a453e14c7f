-- Silver customers: one row per customer, cleaned.
--   * emails are trimmed and lower-cased ('  ANNA.SMITH.7@EXAMPLE.COM ' -> 'anna.smith.7@example.com');
--   * country codes are trimmed and upper-cased ('de' -> 'DE'); anything that is not a
--     known ISO code is left as it is, so the accepted_values check can quarantine it;
--   * the CRM re-exports a customer when it changes: the latest updated_at wins.
SELECT
    customer_id,
    lower(trim(email))                   AS email,
    split_part(lower(trim(email)), '@', -1) AS email_domain,
    trim(name)                           AS name,
    upper(trim(country))                 AS country,
    signup_at,
    CAST(signup_at AS DATE)              AS signup_date,
    updated_at
FROM raw_customers
WHERE customer_id IS NOT NULL            -- a record without an id cannot be merged anywhere
QUALIFY row_number() OVER (
    PARTITION BY customer_id
    ORDER BY updated_at DESC, email      -- email: a stable tie-break for identical timestamps
) = 1
