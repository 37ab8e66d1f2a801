"""A customer's ledger as CSV, for support and accounting (admin API)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable

from token_billing.core.units import format_tokens
from token_billing.store.history import Transaction

COLUMNS = (
    "created_at",
    "transaction_id",
    "kind",
    "amount",
    "amount_mt",
    "occurred_at",
    "order_id",
    "package_id",
    "reason",
    "usage_by_action_mt",
)


def ledger_csv(transactions: Iterable[Transaction]) -> str:
    """RFC 4180 CSV with a header row; amounts exact (decimal tokens and milli-tokens)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for txn in transactions:
        writer.writerow(
            (
                txn.created_at,
                txn.txn_id,
                txn.kind,
                format_tokens(txn.amount_mt),
                txn.amount_mt,
                txn.occurred_at or "",
                txn.order_id or "",
                txn.package_id or "",
                txn.reason or "",
                json.dumps(txn.usage_mt_by_action, sort_keys=True)
                if txn.usage_mt_by_action
                else "",
            )
        )
    return out.getvalue()
