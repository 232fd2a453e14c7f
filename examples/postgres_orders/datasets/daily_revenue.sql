SELECT CAST(updated_at AS DATE) AS day, sum(amount) AS revenue, count(*) AS orders
FROM orders
GROUP BY 1
