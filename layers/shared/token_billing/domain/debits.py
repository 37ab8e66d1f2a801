"""Usage debits from VM agents: a priced batch (checked by `edge.agent_requests`) posted
as one ledger entry."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, NamedTuple

from token_billing.store.ledger import Ledger

if TYPE_CHECKING:
    # The type only: a debit is priced before it gets here (edge.agent_requests).
    from token_billing.domain.usage import PricedUsage


class DebitRequest(NamedTuple):
    customer_id: str
    idempotency_key: str
    usage: PricedUsage  # its cause records `occurred_at` when the agent sent one
    occurred_at: str | None
    return_balance: bool

    @property
    def amount_mt(self) -> int:
        return self.usage.amount_mt


class DebitResult(NamedTuple):
    transaction_id: str
    debited_mt: int
    replayed: bool
    balance_mt: int | None = None
    available_mt: int | None = None


def debit_usage(ledger: Ledger, request: DebitRequest) -> DebitResult:
    """Post the batch as one atomic debit; a repeated key returns the first result."""
    canonical = json.dumps(
        {"usage": request.usage.records, "occurred_at": request.occurred_at},
        separators=(",", ":"),
    )
    posted = ledger.debit(
        customer_id=request.customer_id,
        idempotency_key=request.idempotency_key,
        amount_mt=request.amount_mt,
        canonical_request=canonical,
        usage=request.usage.cause,
    )
    result = DebitResult(posted.txn_id, -posted.amount_mt, posted.replayed)
    if request.return_balance:
        # TransactWriteItems returns no item values: the balance after costs one more read.
        account = ledger.get_account(request.customer_id)
        assert account is not None, "a debit only succeeds on an existing account"
        return DebitResult(
            result.transaction_id,
            result.debited_mt,
            result.replayed,
            account.balance_mt,
            account.available_mt,
        )
    return result
