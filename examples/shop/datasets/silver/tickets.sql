-- Silver tickets: channel and priority normalised to a fixed vocabulary.
-- The helpdesk migrated from priority codes to names; old tickets still carry the codes:
--   p1 -> urgent, p2 -> high, p3 -> normal, p4 -> low.
SELECT
    ticket_id,
    customer_id,
    opened_at,
    CAST(opened_at AS DATE)            AS opened_date,
    lower(trim(channel))               AS channel,
    CASE lower(trim(priority))
        WHEN 'p1' THEN 'urgent'
        WHEN 'p2' THEN 'high'
        WHEN 'p3' THEN 'normal'
        WHEN 'p4' THEN 'low'
        ELSE lower(trim(priority))
    END                                AS priority,
    trim(subject)                      AS subject
FROM raw_tickets
QUALIFY row_number() OVER (PARTITION BY ticket_id ORDER BY opened_at DESC) = 1
