-- Every customer whose account disagrees with their ledger: balance = sum of entries
-- (invariant 1), held = sum of active holds and available = balance - held (invariant 2),
-- or entries and holds without an ACCOUNT item. Largest difference first.
-- Customers with a write at or after {settled_before} are left to the next run: an export
-- is not transactionally consistent around its export time.
SELECT
  t.customer_id,
  k.check_name,
  CASE k.check_name
    WHEN 'balance = sum of entries' THEN t.entries_mt
    WHEN 'held = sum of active holds' THEN t.active_holds_mt
    WHEN 'available = balance - held' THEN t.balance_mt - t.held_mt
    ELSE 0
  END AS expected_mt,
  CASE k.check_name
    WHEN 'balance = sum of entries' THEN t.balance_mt
    WHEN 'held = sum of active holds' THEN t.held_mt
    WHEN 'available = balance - held' THEN t.available_mt
    ELSE t.entries_mt
  END AS actual_mt,
  CASE k.check_name
    WHEN 'account exists' THEN 'entries or holds without an ACCOUNT item'
    ELSE ''
  END AS detail
FROM (
  SELECT
    customer_id,
    count(CASE WHEN item_type = 'account' THEN 1 END) AS accounts,
    coalesce(sum(CASE WHEN item_type = 'account' THEN balance_mt END), 0) AS balance_mt,
    coalesce(sum(CASE WHEN item_type = 'account' THEN held_mt END), 0) AS held_mt,
    coalesce(sum(CASE WHEN item_type = 'account' THEN available_mt END), 0) AS available_mt,
    coalesce(sum(CASE WHEN item_type = 'entry' THEN amount_mt END), 0) AS entries_mt,
    coalesce(
      sum(CASE WHEN item_type = 'hold' AND hold_status = 'active' THEN amount_mt END), 0
    ) AS active_holds_mt,
    max(changed_at) AS last_changed_at
  FROM ledger_items
  WHERE item_type IN ('account', 'entry', 'hold')
  GROUP BY customer_id
) AS t
CROSS JOIN (
  VALUES
    ('account exists'),
    ('balance = sum of entries'),
    ('held = sum of active holds'),
    ('available = balance - held')
) AS k (check_name)
WHERE t.last_changed_at < '{settled_before}'
  AND CASE k.check_name
    WHEN 'account exists' THEN t.accounts = 0 AND (t.entries_mt <> 0 OR t.active_holds_mt <> 0)
    WHEN 'balance = sum of entries' THEN t.accounts > 0 AND t.balance_mt <> t.entries_mt
    WHEN 'held = sum of active holds' THEN t.accounts > 0 AND t.held_mt <> t.active_holds_mt
    ELSE t.accounts > 0 AND t.available_mt <> t.balance_mt - t.held_mt
  END
ORDER BY abs(
  CASE k.check_name
    WHEN 'balance = sum of entries' THEN t.balance_mt - t.entries_mt
    WHEN 'held = sum of active holds' THEN t.held_mt - t.active_holds_mt
    WHEN 'available = balance - held' THEN t.available_mt - t.balance_mt + t.held_mt
    ELSE t.entries_mt
  END
) DESC, t.customer_id, k.check_name
