from typing import Any

import pytest

from tests.conftest import load_event
from token_billing.core.errors import InvalidRequest
from token_billing.edge.agent_requests import parse_debit_request


def valid(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "customer_id": "cust_1",
        "idempotency_key": "batch-1",
        "usage": [{"action": "vm_runtime", "quantity": 2}],
    }
    payload.update(changes)
    return {key: value for key, value in payload.items() if value is not None}


def test_sample_event_parses_and_prices_exactly() -> None:
    request = parse_debit_request(load_event("debit/debit.json"))
    assert request.amount_mt == 5_000 + 1_500 + 1_700 + 800 + 2_500
    assert request.occurred_at == "2026-11-25T11:05:00Z"
    assert request.return_balance is False


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "must be a JSON object"),
        (valid(customer_id=None), "customer_id is required"),
        (valid(customer_id=""), "customer_id is required"),
        (valid(customer_id="a/b"), "customer_id is required"),
        (valid(customer_id=7), "customer_id is required"),
        (valid(idempotency_key=None), "idempotency_key is required"),
        (valid(idempotency_key="x" * 129), "idempotency_key is required"),
        (valid(usage=None), "usage must be a list"),
        (valid(usage=[{"action": "teleport", "quantity": 1}]), "unknown action"),
        (valid(usage=[{"action": "vm_runtime", "quantity": -1}]), "greater than zero"),
        (valid(usage=[{"action": "vm_runtime", "quantity": "1x"}]), "not a decimal"),
        (valid(occurred_at="yesterday"), "ISO 8601"),
        (valid(occurred_at="2026-11-25T10:00:00"), "time zone"),
        (valid(return_balance="yes"), "return_balance"),
        (valid(amount_mt=5), "unknown fields: amount_mt"),
    ],
)
def test_bad_payloads_are_refused(payload: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_debit_request(payload)
