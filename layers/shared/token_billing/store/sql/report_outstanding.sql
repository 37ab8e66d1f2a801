-- Tokens outstanding per customer and in total (the row '(all)'): purchased + bonus +
-- granted - used - clawed back, and what the outstanding purchased tokens were paid for.
-- Credits are used first in, first out: usage and clawbacks consume the oldest credit lot
-- first, so the outstanding tokens are the newest lots. A lot is one paid order (its
-- tokens and bonus, less what was clawed back on it; its price less refunds and disputes)
-- or one grant (paid nothing). A partly used lot is valued pro rata, rounded down to the
-- cent. Cents are in the catalog's one currency.
SELECT
  CASE WHEN GROUPING(customer_id) = 1 THEN '(all)' ELSE customer_id END AS customer_id,
  sum(purchased_mt) AS purchased_mt,
  sum(bonus_mt) AS bonus_mt,
  sum(granted_mt) AS granted_mt,
  sum(used_mt) AS used_mt,
  sum(clawed_back_mt) AS clawed_back_mt,
  sum(outstanding_mt) AS outstanding_mt,
  sum(outstanding_purchased_mt) AS outstanding_purchased_mt,
  sum(outstanding_paid_cents) AS outstanding_paid_cents
FROM (
  SELECT
    customer_id,
    sum(purchased_mt) AS purchased_mt,
    sum(bonus_mt) AS bonus_mt,
    sum(granted_mt) AS granted_mt,
    sum(used_mt) AS used_mt,
    sum(clawed_back_mt) AS clawed_back_mt,
    sum(entries_mt) AS outstanding_mt,
    sum(CASE WHEN purchases > 0 THEN lot_outstanding_mt ELSE 0 END) AS outstanding_purchased_mt,
    sum(
      CASE
        WHEN purchases > 0 AND lot_mt > 0 THEN lot_cents * lot_outstanding_mt / lot_mt
        ELSE 0
      END
    ) AS outstanding_paid_cents
  FROM (
    SELECT
      lots.*,
      CASE
        WHEN purchases + grants = 0 THEN 0
        ELSE least(greatest(customer_outstanding_mt - newer_lots_mt, 0), greatest(lot_mt, 0))
      END AS lot_outstanding_mt
    FROM (
      SELECT
        g.*,
        sum(entries_mt) OVER (PARTITION BY customer_id) AS customer_outstanding_mt,
        coalesce(
          sum(CASE WHEN purchases + grants > 0 THEN lot_mt END) OVER (
            PARTITION BY customer_id
            ORDER BY lot_created_at DESC, lot_key DESC
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
          ),
          0
        ) AS newer_lots_mt
      FROM (
        SELECT
          customer_id,
          lot_key,
          count(CASE WHEN item_type = 'entry' AND kind = 'purchase' THEN 1 END) AS purchases,
          count(CASE WHEN item_type = 'entry' AND kind = 'grant' THEN 1 END) AS grants,
          coalesce(
            sum(
              CASE
                WHEN item_type = 'entry' AND kind IN ('purchase', 'grant', 'clawback')
                  THEN amount_mt
              END
            ),
            0
          ) AS lot_mt,
          coalesce(
            max(
              CASE
                WHEN item_type = 'order'
                  THEN greatest(
                    price_cents - coalesce(refunded_cents, 0) - coalesce(disputed_cents, 0), 0
                  )
              END
            ),
            0
          ) AS lot_cents,
          min(CASE WHEN item_type = 'entry' THEN created_at END) AS lot_created_at,
          coalesce(sum(CASE WHEN item_type = 'entry' THEN amount_mt END), 0) AS entries_mt,
          coalesce(
            sum(CASE WHEN kind = 'purchase' THEN amount_mt - coalesce(bonus_mt, 0) END), 0
          ) AS purchased_mt,
          coalesce(sum(CASE WHEN kind = 'purchase' THEN coalesce(bonus_mt, 0) END), 0)
            AS bonus_mt,
          coalesce(sum(CASE WHEN kind = 'grant' THEN amount_mt END), 0) AS granted_mt,
          coalesce(sum(CASE WHEN kind = 'usage' THEN -amount_mt END), 0) AS used_mt,
          coalesce(sum(CASE WHEN kind = 'clawback' THEN -amount_mt END), 0) AS clawed_back_mt
        FROM (
          -- a paid order's lot: the order item, its purchase credit and its clawbacks;
          -- a grant is a lot of its own; all usage of a customer is one group
          SELECT
            items.*,
            CASE
              WHEN item_type = 'order' THEN substr(sort_key, 7)
              WHEN kind IN ('purchase', 'clawback') THEN coalesce(order_id, '?')
              WHEN kind = 'grant' THEN sort_key
              ELSE '(usage)'
            END AS lot_key
          FROM ledger_items AS items
          WHERE item_type IN ('entry', 'order')
        ) AS keyed
        GROUP BY customer_id, lot_key
      ) AS g
    ) AS lots
  ) AS valued
  GROUP BY customer_id
) AS per_customer
GROUP BY ROLLUP (customer_id)
ORDER BY GROUPING(customer_id) DESC, outstanding_paid_cents DESC, customer_id
