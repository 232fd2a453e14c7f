CREATE TABLE IF NOT EXISTS public.example_orders (
  order_id bigint PRIMARY KEY,
  customer_id bigint,
  amount numeric(12,2),
  status text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- the incremental cursor: each run first asks for its newest settled value (an index lookup)
CREATE INDEX IF NOT EXISTS example_orders_updated_at ON public.example_orders (updated_at);
INSERT INTO public.example_orders (order_id, customer_id, amount, status, updated_at)
SELECT g, g % 100, (g % 500) + 0.99, (ARRAY['placed','shipped','delivered'])[1 + g % 3],
       now() - interval '1 day' + g * interval '1 second'
FROM generate_series(1, 1000) g
ON CONFLICT DO NOTHING;
