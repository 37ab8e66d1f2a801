"""Small helpers integration tests share."""

from __future__ import annotations

from token_billing.ledger import Account, Ledger


def fund(ledger: Ledger, customer_id: str, amount_mt: int, key: str = "fund") -> None:
    ledger.grant(
        customer_id=customer_id,
        idempotency_key=key,
        amount_mt=amount_mt,
        reason="test funding",
        granted_by="tests",
    )


def assert_consistent(ledger: Ledger, customer_id: str) -> Account:
    """Invariants 1 and 2: balance = sum of entries; available = balance - held."""
    account = ledger.get_account(customer_id)
    assert account is not None
    assert account.balance_mt == ledger.sum_entries_mt(customer_id)
    assert account.available_mt == account.balance_mt - account.held_mt
    return account
