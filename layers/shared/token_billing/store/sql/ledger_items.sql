-- The customer items of one export of the ledger table (DynamoDB JSON), one typed row each:
-- accounts, ledger entries, holds and orders. Every query of this folder reads this relation,
-- never the export itself. Athena reads `ledger_export` from the Glue table (partition
-- projection: the export id picks the export's folder); DuckDB from a view of the same name
-- over the files (tools/export_duckdb.py). Numbers arrive as strings ({"N": "12"}).
SELECT
  substr(item.pk.s, 6) AS customer_id,
  CASE
    WHEN item.sk.s = 'ACCOUNT' THEN 'account'
    WHEN item.sk.s LIKE 'ACCOUNT#HOLD#%' THEN 'hold'
    WHEN item.sk.s LIKE 'TXN#%' THEN 'entry'
    ELSE 'order'
  END AS item_type,
  item.sk.s AS sort_key,
  CAST(item.balance_mt.n AS BIGINT) AS balance_mt,
  CAST(item.held_mt.n AS BIGINT) AS held_mt,
  CAST(item.available_mt.n AS BIGINT) AS available_mt,
  -- an entry's kind (an order item has a `kind` of its own: purchase or auto top-up)
  CASE WHEN item.sk.s LIKE 'TXN#%' THEN item.kind.s END AS kind,
  CAST(item.amount_mt.n AS BIGINT) AS amount_mt,
  item.order_id.s AS order_id,
  CAST(item.bonus_mt.n AS BIGINT) AS bonus_mt,
  item.hold_status.s AS hold_status,
  item.status.s AS order_status,
  item.paid_at.s AS paid_at,
  CAST(item.tokens_mt.n AS BIGINT) AS tokens_mt,
  CAST(item.price_cents.n AS BIGINT) AS price_cents,
  item.currency.s AS currency,
  CAST(item.refunded_cents.n AS BIGINT) AS refunded_cents,
  CAST(item.disputed_cents.n AS BIGINT) AS disputed_cents,
  item.created_at.s AS created_at,
  -- the item's last write: a closed hold's close, an account's or order's update, an
  -- entry's creation (entries are never updated)
  coalesce(item.closed_at.s, item.updated_at.s, item.created_at.s) AS changed_at,
  CAST(item.usage_mt_by_action.m.vm_runtime.n AS BIGINT) AS used_vm_runtime_mt,
  CAST(item.usage_mt_by_action.m.screenshot.n AS BIGINT) AS used_screenshot_mt,
  CAST(item.usage_mt_by_action.m.api_call.n AS BIGINT) AS used_api_call_mt,
  CAST(item.usage_mt_by_action.m.ai_message.n AS BIGINT) AS used_ai_message_mt,
  CAST(item.usage_mt_by_action.m.file_upload.n AS BIGINT) AS used_file_upload_mt
FROM ledger_export
WHERE export_id = '{export_id}'
  AND item.pk.s LIKE 'CUST#%'
  AND (
    item.sk.s = 'ACCOUNT'
    OR item.sk.s LIKE 'ACCOUNT#HOLD#%'
    OR item.sk.s LIKE 'TXN#%'
    OR item.sk.s LIKE 'ORDER#%'
  )
