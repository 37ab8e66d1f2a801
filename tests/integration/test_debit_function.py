"""The debit function end to end on DynamoDB Local: bad input changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import FakeLambdaContext, load_event
from tests.integration.helpers import assert_consistent, fund
from token_billing.store.ledger import Ledger


def invoke(payload: Any) -> dict[str, Any]:
    import debit_handler

    reply: dict[str, Any] = debit_handler.lambda_handler(payload, FakeLambdaContext())
    return reply


def base(customer_id: str, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "customer_id": customer_id,
        "idempotency_key": "k1",
        "usage": [{"action": "api_call", "quantity": 10}],
    }
    payload.update(changes)
    return payload


BAD_INPUTS: dict[str, dict[str, Any]] = {
    "unknown action": {"usage": [{"action": "mine_bitcoin", "quantity": 1}]},
    "negative quantity": {"usage": [{"action": "api_call", "quantity": -5}]},
    "zero quantity": {"usage": [{"action": "api_call", "quantity": 0}]},
    "non-numeric quantity": {"usage": [{"action": "api_call", "quantity": "lots"}]},
    "missing key": {"idempotency_key": None},
    "oversized batch": {"usage": [{"action": "api_call", "quantity": 1}] * 1_001},
    "empty batch": {"usage": []},
    "price from the client": {"amount_mt": 1},
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gets_a_clear_error_and_moves_nothing(
    case: str, ledger: Ledger, customer_id: str
) -> None:
    fund(ledger, customer_id, 50_000)
    payload = {
        key: value
        for key, value in base(customer_id, **BAD_INPUTS[case]).items()
        if value is not None
    }
    reply = invoke(payload)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "invalid_request"
    assert reply["error"]["retryable"] is False
    assert len(reply["error"]["message"]) > 10
    account = assert_consistent(ledger, customer_id)
    assert (account.balance_mt, account.version) == (50_000, 1)


def test_unknown_customer_is_refused(customer_id: str, ledger: Ledger) -> None:
    reply = invoke(base(customer_id))
    assert reply["ok"] is False
    assert reply["error"]["code"] == "customer_not_found"
    assert ledger.get_account(customer_id) is None


def test_a_1000_line_batch_is_one_debit_and_one_entry(ledger: Ledger, customer_id: str) -> None:
    fund(ledger, customer_id, 1_000_000)
    lines = [
        {"action": "vm_runtime", "quantity": "0.5", "vm_id": f"vm-{index % 40}"}
        for index in range(1_000)
    ]
    reply = invoke(base(customer_id, usage=lines, return_balance=True))
    assert reply["ok"], reply
    assert reply["debited_mt"] == 500_000
    assert reply["balance_mt"] == reply["available_mt"] == 500_000
    assert len(list(ledger.iter_entries(customer_id))) == 2
    assert_consistent(ledger, customer_id)


def test_retry_returns_the_original_result(ledger: Ledger, customer_id: str) -> None:
    fund(ledger, customer_id, 50_000)
    first = invoke(base(customer_id))
    fund(ledger, customer_id, 1, key="more")  # the account changes between the two calls
    again = invoke(base(customer_id))
    assert again == {**first, "replayed": True}
    assert assert_consistent(ledger, customer_id).balance_mt == 50_000 - 1_000 + 1


def test_same_key_with_other_usage_is_a_conflict(ledger: Ledger, customer_id: str) -> None:
    fund(ledger, customer_id, 50_000)
    invoke(base(customer_id))
    reply = invoke(base(customer_id, usage=[{"action": "api_call", "quantity": 11}]))
    assert reply["error"]["code"] == "idempotency_key_reused"
    assert assert_consistent(ledger, customer_id).balance_mt == 49_000


def test_sample_event_runs_against_the_real_engine(ledger: Ledger) -> None:
    fund(ledger, "cust_demo", 20_000, key="sample")
    event = load_event("debit/debit.json")
    reply = invoke(event)
    assert reply["ok"]
    assert reply["debited"] == "11.5"
