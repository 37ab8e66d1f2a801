"""Usage debits from VM agents: validate a batch, price it, post it as one ledger entry.

Validation is hand-written rather than pydantic: the debit function's cold start budget is
a few milliseconds over bare boto3, and pydantic's import alone is ~30 ms.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from token_billing.core.errors import InvalidRequest
from token_billing.domain.usage import UsageLine, cost_by_action, price_usage
from token_billing.store.ledger import Ledger
from token_billing.store.records import UsageCause
from token_billing.store.table_layout import CUSTOMER_ID_PATTERN, IDEMPOTENCY_KEY_PATTERN

DEBIT_FIELDS = frozenset(
    {"op", "customer_id", "idempotency_key", "usage", "occurred_at", "return_balance"}
)


@dataclass(frozen=True, slots=True)
class DebitRequest:
    customer_id: str
    idempotency_key: str
    lines: list[UsageLine]
    occurred_at: str | None
    return_balance: bool

    @property
    def amount_mt(self) -> int:
        return sum(line.cost_mt for line in self.lines)


@dataclass(frozen=True, slots=True)
class DebitResult:
    transaction_id: str
    debited_mt: int
    replayed: bool
    balance_mt: int | None = None
    available_mt: int | None = None


def require_customer_id(value: object) -> str:
    if not isinstance(value, str) or not CUSTOMER_ID_PATTERN.match(value):
        raise InvalidRequest("customer_id is required: 1-64 characters of letters, digits, _ and -")
    return value


def require_idempotency_key(value: object, field: str = "idempotency_key") -> str:
    if not isinstance(value, str) or not IDEMPOTENCY_KEY_PATTERN.match(value):
        raise InvalidRequest(
            f"{field} is required: 1-128 characters of letters, digits and _.:/+=-"
        )
    return value


def parse_occurred_at(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidRequest("occurred_at must be an ISO 8601 timestamp with a time zone")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest("occurred_at must be an ISO 8601 timestamp with a time zone") from None
    if moment.tzinfo is None:
        raise InvalidRequest("occurred_at must carry a time zone, e.g. 2026-11-25T10:00:00Z")
    return value


def parse_debit_request(payload: object) -> DebitRequest:
    """A debit invoke payload as a DebitRequest, or InvalidRequest saying what is wrong."""
    if not isinstance(payload, Mapping):
        raise InvalidRequest("the debit payload must be a JSON object")
    unknown = set(payload) - DEBIT_FIELDS
    if unknown:
        raise InvalidRequest(f"unknown fields: {', '.join(sorted(map(str, unknown)))}")
    return_balance = payload.get("return_balance", False)
    if not isinstance(return_balance, bool):
        raise InvalidRequest("return_balance must be true or false")
    return DebitRequest(
        customer_id=require_customer_id(payload.get("customer_id")),
        idempotency_key=require_idempotency_key(payload.get("idempotency_key")),
        lines=price_usage(payload.get("usage")),
        occurred_at=parse_occurred_at(payload.get("occurred_at")),
        return_balance=return_balance,
    )


def usage_cause(lines: list[UsageLine], occurred_at: str | None = None) -> UsageCause:
    """What a usage entry records of its cause: its lines and their cost per action (which
    also move the account's lifetime per-action counters)."""
    return UsageCause(
        lines=[line.to_record() for line in lines],
        mt_by_action=cost_by_action(lines),
        occurred_at=occurred_at,
    )


def debit_usage(ledger: Ledger, request: DebitRequest) -> DebitResult:
    """Post the batch as one atomic debit; a repeated key returns the first result."""
    records = [line.to_record() for line in request.lines]
    canonical = json.dumps(
        {"usage": records, "occurred_at": request.occurred_at}, separators=(",", ":")
    )
    posted = ledger.debit(
        customer_id=request.customer_id,
        idempotency_key=request.idempotency_key,
        amount_mt=request.amount_mt,
        canonical_request=canonical,
        usage=usage_cause(request.lines, request.occurred_at or None),
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
