"""Invariant 3 for every op of the debit function: the same call again (same key or ids)
answers exactly its first reply, with `replayed: true`, and moves nothing (issue 16: a
refused renew's replay said `released: "200"` where the first said `"0"`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import FakeLambdaContext
from tests.integration.helpers import assert_consistent, fund
from token_billing.store.ledger import Ledger


def invoke(payload: dict[str, Any]) -> dict[str, Any]:
    import debit_handler

    reply: dict[str, Any] = debit_handler.lambda_handler(payload, FakeLambdaContext())
    return reply


def usage(minutes: int) -> list[dict[str, Any]]:
    return [{"action": "vm_runtime", "quantity": minutes, "vm_id": "vm-1"}]


def hold(customer: str, hold_id: str, amount: int) -> dict[str, Any]:
    return {
        "op": "hold",
        "customer_id": customer,
        "hold_id": hold_id,
        "amount": amount,
        "expires_in_s": 600,
        "vm_id": "vm-1",
    }


def renew(customer: str, amount: int) -> dict[str, Any]:
    return {
        "op": "renew",
        "customer_id": customer,
        "hold_id": "h1",
        "usage": usage(50),
        "next_hold_id": "h2",
        "amount": amount,
        "expires_in_s": 600,
        "vm_id": "vm-1",
    }


def settle(customer: str) -> dict[str, Any]:
    return {"op": "settle", "customer_id": customer, "hold_id": "h1", "usage": usage(30)}


# (tokens funded, calls before the one repeated, the repeated call, what the first says)
Case = tuple[int, Callable[[str], list[dict[str, Any]]], Callable[[str], dict[str, Any]]]
CASES: dict[str, Case] = {
    "debit": (
        1_000,
        lambda c: [],
        lambda c: {"customer_id": c, "idempotency_key": "k1", "usage": usage(5)},
    ),
    "hold": (1_000, lambda c: [], lambda c: hold(c, "h1", 200)),
    "settle": (1_000, lambda c: [hold(c, "h1", 200)], settle),
    "renew renewed": (1_000, lambda c: [hold(c, "h1", 200)], lambda c: renew(c, 200)),
    "renew refused": (300, lambda c: [hold(c, "h1", 250)], lambda c: renew(c, 280)),
    "release": (
        1_000,
        lambda c: [hold(c, "h1", 200)],
        lambda c: {"op": "release", "customer_id": c, "hold_id": "h1"},
    ),
    "late settle": (
        1_000,
        lambda c: [hold(c, "h1", 200), {"op": "release", "customer_id": c, "hold_id": "h1"}],
        settle,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_repeated_op_answers_exactly_its_first_reply(
    case: str, ledger: Ledger, customer_id: str
) -> None:
    tokens, before, repeated = CASES[case]
    fund(ledger, customer_id, tokens * 1_000)
    for call in before(customer_id):
        assert invoke(call)["ok"], call
    first = invoke(repeated(customer_id))
    assert first["ok"], first
    assert first["replayed"] is False
    after_first = assert_consistent(ledger, customer_id)
    entries = len(list(ledger.iter_entries(customer_id)))

    second = invoke(repeated(customer_id))

    assert second == first | {"replayed": True}
    assert assert_consistent(ledger, customer_id) == after_first  # nothing moved
    assert len(list(ledger.iter_entries(customer_id))) == entries


def test_the_refused_renew_says_so_both_times(ledger: Ledger, customer_id: str) -> None:
    fund(ledger, customer_id, 300_000)
    assert invoke(hold(customer_id, "h1", 250))["ok"]
    first = invoke(renew(customer_id, 280))  # 250 tokens left after the usage
    second = invoke(renew(customer_id, 280))
    assert (first["renewed"], first["released"], first["debited"]) == (False, "0", "50")
    assert (second["renewed"], second["released"], second["replayed"]) == (False, "0", True)
    assert second["grace_until"] == first["grace_until"]
