"""The debit handler on moto with the sample invoke events from events/debit/."""

from typing import Any

import pytest

from tests.conftest import FakeLambdaContext, load_event
from token_billing.store.ledger import Ledger


@pytest.fixture
def handler(moto_table: str) -> Any:
    import debit_handler

    return debit_handler.lambda_handler


def test_sample_debit_event(
    handler: Any, moto_ledger: Ledger, lambda_context: FakeLambdaContext
) -> None:
    moto_ledger.grant(
        customer_id="cust_demo", idempotency_key="g", amount_mt=50_000, reason="t", granted_by="t"
    )
    reply = handler(load_event("debit/debit.json"), lambda_context)
    assert reply["ok"] is True
    assert (reply["debited"], reply["debited_mt"], reply["replayed"]) == ("11.5", 11_500, False)
    assert reply["transaction_id"].startswith("txn_")
    assert "balance" not in reply  # costs a second request: only on return_balance

    with_balance = handler(load_event("debit/debit-return-balance.json"), lambda_context)
    assert (with_balance["balance"], with_balance["available_mt"]) == ("37.5", 37_500)


def test_invalid_sample_event_is_refused_and_moves_nothing(
    handler: Any, moto_ledger: Ledger, lambda_context: FakeLambdaContext
) -> None:
    moto_ledger.grant(
        customer_id="cust_demo", idempotency_key="g", amount_mt=50_000, reason="t", granted_by="t"
    )
    reply = handler(load_event("debit/debit-invalid.json"), lambda_context)
    assert reply == {
        "ok": False,
        "error": {
            "code": "invalid_request",
            "message": "usage[0]: unknown action 'teleport'; valid actions: "
            "vm_runtime, screenshot, api_call, ai_message, file_upload",
            "retryable": False,
        },
    }
    assert moto_ledger.sum_entries_mt("cust_demo") == 50_000


def test_insufficient_tokens_reply_carries_the_balance(
    handler: Any, moto_ledger: Ledger, lambda_context: FakeLambdaContext
) -> None:
    moto_ledger.grant(
        customer_id="cust_demo", idempotency_key="g", amount_mt=1_000, reason="t", granted_by="t"
    )
    reply = handler(load_event("debit/debit.json"), lambda_context)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "insufficient_tokens"
    assert (reply["error"]["available"], reply["error"]["available_mt"]) == ("1", 1_000)
    assert moto_ledger.get_account("cust_demo").balance_mt == 1_000  # type: ignore[union-attr]
