-- Tokens and cents sold per day and per month (UTC, the day the purchase was credited):
-- each credited order once, with its tokens, bonus and price.
SELECT
  CASE WHEN GROUPING(sale_day) = 0 THEN 'day' ELSE 'month' END AS period_kind,
  coalesce(sale_day, sale_month) AS period,
  currency,
  count(*) AS orders,
  sum(tokens_mt) AS tokens_mt,
  sum(bonus_mt) AS bonus_mt,
  sum(price_cents) AS price_cents
FROM (
  SELECT
    substr(credited_at, 1, 10) AS sale_day,
    substr(credited_at, 1, 7) AS sale_month,
    currency,
    tokens_mt,
    bonus_mt,
    price_cents
  FROM (
    SELECT
      customer_id,
      order_id,
      min(CASE WHEN item_type = 'entry' THEN created_at END) AS credited_at,
      coalesce(max(CASE WHEN item_type = 'order' THEN currency END), '?') AS currency,
      coalesce(sum(CASE WHEN item_type = 'entry' THEN amount_mt - coalesce(bonus_mt, 0) END), 0)
        AS tokens_mt,
      coalesce(sum(CASE WHEN item_type = 'entry' THEN coalesce(bonus_mt, 0) END), 0) AS bonus_mt,
      coalesce(max(CASE WHEN item_type = 'order' THEN price_cents END), 0) AS price_cents
    FROM (
      SELECT
        customer_id,
        item_type,
        CASE
          WHEN item_type = 'order' THEN substr(sort_key, 7)
          ELSE coalesce(order_id, '?')
        END AS order_id,
        created_at,
        currency,
        amount_mt,
        bonus_mt,
        price_cents
      FROM ledger_items
      WHERE item_type = 'order' OR (item_type = 'entry' AND kind = 'purchase')
    ) AS purchase_items
    GROUP BY customer_id, order_id
  ) AS orders
  WHERE credited_at IS NOT NULL
) AS sales
GROUP BY GROUPING SETS ((sale_day, currency), (sale_month, currency))
ORDER BY period_kind, period, currency
