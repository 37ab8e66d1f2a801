-- Orders paid without exactly one credit of their tokens + bonus, and purchase credits
-- without a paid order (a purchase entry names its order; the order item says whether it
-- was paid: a paid status, or paid_at, which stays once paid). Groups with a write at or
-- after {settled_before} are left to the next run (the export's consistency window).
SELECT
  o.customer_id,
  k.check_name,
  CASE WHEN k.check_name = 'paid order credited once' THEN o.order_total_mt ELSE 0 END
    AS expected_mt,
  o.credited_mt AS actual_mt,
  'order ' || o.order_id || ': ' || CAST(o.credits AS VARCHAR) || ' credit(s)' AS detail
FROM (
  SELECT
    customer_id,
    order_id,
    max(
      CASE
        WHEN item_type = 'order'
          AND (
            order_status IN ('paid', 'partially_refunded', 'refunded', 'disputed')
            OR paid_at IS NOT NULL
          )
          THEN 1
        ELSE 0
      END
    ) AS paid,
    coalesce(
      max(CASE WHEN item_type = 'order' THEN tokens_mt + coalesce(bonus_mt, 0) END), 0
    ) AS order_total_mt,
    count(CASE WHEN item_type = 'entry' THEN 1 END) AS credits,
    coalesce(sum(CASE WHEN item_type = 'entry' THEN amount_mt END), 0) AS credited_mt,
    max(changed_at) AS last_changed_at
  FROM (
    SELECT
      customer_id,
      item_type,
      CASE
        WHEN item_type = 'order' THEN substr(sort_key, 7)
        ELSE coalesce(order_id, '?')
      END AS order_id,
      order_status,
      paid_at,
      tokens_mt,
      bonus_mt,
      amount_mt,
      changed_at
    FROM ledger_items
    WHERE item_type = 'order' OR (item_type = 'entry' AND kind = 'purchase')
  ) AS purchase_items
  GROUP BY customer_id, order_id
) AS o
CROSS JOIN (VALUES ('paid order credited once'), ('credit has a paid order')) AS k (check_name)
WHERE o.last_changed_at < '{settled_before}'
  AND CASE k.check_name
    WHEN 'paid order credited once'
      THEN o.paid = 1 AND NOT (o.credits = 1 AND o.credited_mt = o.order_total_mt)
    ELSE o.paid = 0 AND o.credits > 0
  END
ORDER BY o.customer_id, o.order_id, k.check_name
