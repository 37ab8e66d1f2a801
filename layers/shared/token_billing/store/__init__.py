"""Data access: DynamoDB only. Ledger transactions, holds, orders, history, usage aggregates,
the table layout and item codecs. Knows nothing of HTTP, Lambda events or the domain."""
