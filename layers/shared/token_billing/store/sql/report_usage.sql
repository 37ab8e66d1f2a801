-- Tokens used per action and month (UTC, the month the usage was debited), from the
-- usage entries' per-action amounts. The actions are the catalog's (a test holds this list,
-- ledger_items.sql and the Glue table's columns to the catalog).
SELECT
  substr(u.created_at, 1, 7) AS usage_month,
  a.action,
  count(*) AS entries,
  sum(
    CASE a.action
      WHEN 'vm_runtime' THEN u.used_vm_runtime_mt
      WHEN 'screenshot' THEN u.used_screenshot_mt
      WHEN 'api_call' THEN u.used_api_call_mt
      WHEN 'ai_message' THEN u.used_ai_message_mt
      ELSE u.used_file_upload_mt
    END
  ) AS used_mt
FROM ledger_items AS u
CROSS JOIN (
  VALUES ('vm_runtime'), ('screenshot'), ('api_call'), ('ai_message'), ('file_upload')
) AS a (action)
WHERE u.item_type = 'entry'
  AND u.kind = 'usage'
  AND CASE a.action
    WHEN 'vm_runtime' THEN u.used_vm_runtime_mt
    WHEN 'screenshot' THEN u.used_screenshot_mt
    WHEN 'api_call' THEN u.used_api_call_mt
    WHEN 'ai_message' THEN u.used_ai_message_mt
    ELSE u.used_file_upload_mt
  END IS NOT NULL
GROUP BY substr(u.created_at, 1, 7), a.action
ORDER BY usage_month, a.action
