"""The ledger's decisions (replay, refusal, unknown customer, key reuse) on moto; the same
properties under real concurrency are proven against DynamoDB Local in tests/integration."""

import pytest

from token_billing.core.errors import CustomerNotFound, IdempotencyKeyReused, InsufficientTokens
from token_billing.store.ledger import Ledger
from token_billing.store.records import UsageCause


def debit(ledger: Ledger, customer_id: str, key: str, amount_mt: int, request: str = "r"):  # type: ignore[no-untyped-def]
    return ledger.debit(
        customer_id=customer_id,
        idempotency_key=key,
        amount_mt=amount_mt,
        canonical_request=request,
        usage=UsageCause(lines=[], mt_by_action={}),
    )


def test_grant_then_debit_moves_balance_and_available(moto_ledger: Ledger) -> None:
    moto_ledger.grant(
        customer_id="c1", idempotency_key="g1", amount_mt=10_000, reason="promo", granted_by="t"
    )
    posted = debit(moto_ledger, "c1", "d1", 2_500)
    assert (posted.amount_mt, posted.replayed) == (-2_500, False)
    account = moto_ledger.get_account("c1")
    assert account is not None
    assert (account.balance_mt, account.available_mt, account.held_mt) == (7_500, 7_500, 0)
    assert (account.granted_mt, account.used_mt, account.version) == (10_000, 2_500, 2)
    assert moto_ledger.sum_entries_mt("c1") == 7_500


def test_replay_returns_the_first_result_and_moves_nothing(moto_ledger: Ledger) -> None:
    moto_ledger.grant(
        customer_id="c1", idempotency_key="g1", amount_mt=10_000, reason="promo", granted_by="t"
    )
    first = debit(moto_ledger, "c1", "d1", 2_500)
    again = debit(moto_ledger, "c1", "d1", 2_500)
    assert again.replayed
    assert (again.txn_id, again.amount_mt, again.created_at) == (
        first.txn_id,
        first.amount_mt,
        first.created_at,
    )
    account = moto_ledger.get_account("c1")
    assert account is not None
    assert account.balance_mt == 7_500


def test_key_reused_for_another_request_is_a_conflict(moto_ledger: Ledger) -> None:
    moto_ledger.grant(
        customer_id="c1", idempotency_key="g1", amount_mt=10_000, reason="promo", granted_by="t"
    )
    debit(moto_ledger, "c1", "d1", 2_500, request="first")
    with pytest.raises(IdempotencyKeyReused):
        debit(moto_ledger, "c1", "d1", 100, request="second")
    account = moto_ledger.get_account("c1")
    assert account is not None
    assert account.balance_mt == 7_500


def test_refusal_carries_the_balance_and_moves_nothing(moto_ledger: Ledger) -> None:
    moto_ledger.grant(
        customer_id="c1", idempotency_key="g1", amount_mt=1_000, reason="promo", granted_by="t"
    )
    with pytest.raises(InsufficientTokens) as refused:
        debit(moto_ledger, "c1", "d1", 1_001)
    assert refused.value.details["available_mt"] == 1_000
    assert moto_ledger.sum_entries_mt("c1") == 1_000


def test_unknown_customer_is_not_found(moto_ledger: Ledger) -> None:
    with pytest.raises(CustomerNotFound):
        debit(moto_ledger, "nobody", "d1", 1)
    assert moto_ledger.get_account("nobody") is None
