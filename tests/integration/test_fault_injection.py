"""Injected faults leave nothing half done (issue 16). A fault-injecting proxy sits between
the unchanged handlers and DynamoDB Local, and for debit, credit, grant, hold, settle and
renew proves:
- a response lost after the write committed (the ambiguous case) is answered correctly on
  the retry, and nothing moved twice;
- throttling and 5xx are retried within the bound (botocore's 3 attempts inside each of the
  ledger's 5), then answered as retryable, with nothing moved;
and balance = sum of entries (held = sum of holds) after every run."""

from __future__ import annotations

import json
import secrets
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import botocore.endpoint
import pytest

from local import dynamodb_local
from tests import stripe_events
from tests.conftest import FakeLambdaContext, load_event
from tests.integration import fault_proxy
from tests.integration.helpers import assert_consistent, fund
from token_billing import runtime
from token_billing.store.ledger import Ledger
from token_billing.store.order_records import Order
from token_billing.store.orders import OrderStore

# botocore's attempts per request (runtime.dynamodb_client: the first + max_attempts=3
# retries) x the ledger's attempts (transactions.TRANSACTION_ATTEMPTS).
MAX_TRANSACT_REQUESTS = 4 * 5
LINE = {"action": "api_call", "quantity": 50}  # 5 tokens


@pytest.fixture
def proxy(
    ddb_local: dynamodb_local.DynamoDBLocal, local_aws: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[fault_proxy.FaultProxy]:
    # botocore's retry backoff, not the behaviour under test, would make this slow.
    monkeypatch.setattr(
        botocore.endpoint, "time", types.SimpleNamespace(sleep=lambda _: None, time=time.time)
    )
    with fault_proxy.running(ddb_local.endpoint) as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", running.endpoint)
        monkeypatch.setenv("STAGE", "local")
        monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_faults")
        monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", stripe_events.WEBHOOK_SECRET)
        runtime.reset()
        yield running
    runtime.reset()


def debit_invoke(payload: dict[str, Any]) -> dict[str, Any]:
    import debit_handler

    reply: dict[str, Any] = debit_handler.lambda_handler(payload, FakeLambdaContext())
    return reply


def hold_payload(customer: str, hold_id: str = "h1") -> dict[str, Any]:
    return {
        "op": "hold",
        "customer_id": customer,
        "hold_id": hold_id,
        "amount": 100,
        "expires_in_s": 600,
    }


@dataclass(frozen=True)
class Op:
    setup: Callable[[Ledger, str], Any]
    call: Callable[[str, Any], dict[str, Any]]  # -> {"retryable": bool, "ok": bool, "id": ...}
    moved: tuple[int, int]  # (balance_mt, held_mt) after it succeeded once


def _debit(customer: str, _: Any) -> dict[str, Any]:
    reply = debit_invoke({"customer_id": customer, "idempotency_key": "k1", "usage": [LINE]})
    return _invoke_outcome(reply, "transaction_id")


def _invoke_outcome(reply: dict[str, Any], id_field: str) -> dict[str, Any]:
    error = reply.get("error") or {}
    return {
        "ok": reply["ok"],
        "retryable": error.get("retryable", False),
        "id": reply.get(id_field),
    }


def _hold(customer: str, _: Any) -> dict[str, Any]:
    return _invoke_outcome(debit_invoke(hold_payload(customer)), "hold_id")


def _with_hold(ledger: Ledger, customer: str) -> None:
    fund(ledger, customer, 1_000_000)
    from token_billing.domain.holds import place_hold
    from token_billing.edge.agent_requests import parse_hold_request
    from token_billing.store.holds import HoldLedger

    request = parse_hold_request(hold_payload(customer), datetime.now(UTC))
    place_hold(HoldLedger(ledger._client, "LedgerTable"), request)


def _settle(customer: str, _: Any) -> dict[str, Any]:
    payload = {"op": "settle", "customer_id": customer, "hold_id": "h1", "usage": [LINE]}
    return _invoke_outcome(debit_invoke(payload), "transaction_id")


def _renew(customer: str, _: Any) -> dict[str, Any]:
    payload = hold_payload(customer, "h1") | {"op": "renew", "usage": [LINE], "next_hold_id": "h2"}
    payload.pop("hold_id")
    payload["hold_id"] = "h1"
    return _invoke_outcome(debit_invoke(payload), "transaction_id")


def _grant(customer: str, _: Any) -> dict[str, Any]:
    import grants_handler

    event = load_event("grants/grant-admin.json")
    event["rawPath"] = event["rawPath"].replace("cust_demo", customer)
    event["pathParameters"]["customer_id"] = customer
    event["requestContext"]["http"]["path"] = event["rawPath"]
    reply = grants_handler.lambda_handler(event, FakeLambdaContext())
    body = json.loads(reply["body"])
    error = body.get("error") or {}
    return {
        "ok": reply["statusCode"] in (200, 201),
        "retryable": error.get("retryable", False),
        "id": body.get("transaction_id"),
    }


def _order(ledger: Ledger, customer: str) -> Order:
    order = Order(
        order_id=f"ord_{int(time.time() * 1000):012x}{secrets.token_hex(6)}",
        customer_id=customer,
        package_id="growth",
        catalog_version="2026-11-01",
        price_cents=4_900,
        currency="usd",
        tokens_mt=6_000_000,
        bonus_mt=500_000,
        status="pending",
        created_at="2026-12-01T00:00:00Z",
    )
    return OrderStore(ledger._client, "LedgerTable").create(
        order, idempotency_key=None, request_hash=""
    )


def _credit(customer: str, order: Order) -> dict[str, Any]:
    import webhook_handler

    session = stripe_events.checkout_session(
        session_id="cs_test_" + order.order_id,
        customer_id=customer,
        order_id=order.order_id,
        package_id="growth",
        amount_total=4_900,
        payment_intent="pi_" + order.order_id,
    )
    body = stripe_events.event_body(
        "checkout.session.completed", session, event_id="evt_" + order.order_id
    )
    reply = webhook_handler.lambda_handler(stripe_events.webhook_request(body), FakeLambdaContext())
    answer = json.loads(reply["body"])
    return {
        "ok": reply["statusCode"] == 200
        and answer.get("action") in ("credited", "already_credited"),
        "retryable": reply["statusCode"] == 503,
        "id": answer.get("order_id"),
    }


OPS: dict[str, Op] = {
    "debit": Op(lambda ledger, c: fund(ledger, c, 1_000_000), _debit, (995_000, 0)),
    "hold": Op(lambda ledger, c: fund(ledger, c, 1_000_000), _hold, (1_000_000, 100_000)),
    "settle": Op(_with_hold, _settle, (995_000, 0)),
    "renew": Op(_with_hold, _renew, (995_000, 100_000)),
    "grant": Op(lambda ledger, c: None, _grant, (250_000, 0)),
    "credit": Op(_order, _credit, (6_500_000, 0)),
}


def state(ledger: Ledger, customer: str) -> tuple[int, int]:
    account = ledger.get_account(customer)
    if account is None:
        return (0, 0)
    assert_consistent(ledger, customer)
    return (account.balance_mt, account.held_mt)


@pytest.mark.parametrize("name", OPS)
def test_a_response_lost_after_the_commit_is_answered_right_and_moves_nothing_twice(
    name: str, proxy: fault_proxy.FaultProxy, ledger: Ledger, customer_id: str
) -> None:
    op = OPS[name]
    context = op.setup(ledger, customer_id)
    proxy.inject("TransactWriteItems", "lost")
    first = op.call(customer_id, context)
    assert proxy.injected["TransactWriteItems:lost"] == 1
    # Either botocore's retry already found the committed write (a replay), or the caller
    # was told to retry: then the same call answers it.
    if not first["ok"]:
        assert first["retryable"] is True, first
        first = op.call(customer_id, context)
    assert first["ok"], first
    assert state(ledger, customer_id) == op.moved
    again = op.call(customer_id, context)
    assert again == first  # the first result, by its key
    assert state(ledger, customer_id) == op.moved


@pytest.mark.parametrize("fault", ["throttle", "5xx"])
@pytest.mark.parametrize("name", OPS)
def test_throttling_and_5xx_are_retried_within_the_bound(
    name: str, fault: str, proxy: fault_proxy.FaultProxy, ledger: Ledger, customer_id: str
) -> None:
    op = OPS[name]
    context = op.setup(ledger, customer_id)
    before = state(ledger, customer_id)

    # More than botocore retries on its own: the ledger's own retry takes over.
    proxy.inject("TransactWriteItems", *[fault] * 5)
    assert op.call(customer_id, context)["ok"]
    assert state(ledger, customer_id) == op.moved

    proxy.clear()
    other = f"{customer_id}_b"
    context = op.setup(ledger, other)
    before = state(ledger, other)
    proxy.inject_always("TransactWriteItems", fault)
    seen = proxy.seen["TransactWriteItems"]
    outcome = op.call(other, context)
    sent = proxy.seen["TransactWriteItems"] - seen
    assert outcome == {"ok": False, "retryable": True, "id": None} or (
        outcome["ok"] is False and outcome["retryable"] is True
    ), outcome
    assert 4 < sent <= MAX_TRANSACT_REQUESTS, sent  # retried, and bounded
    assert state(ledger, other) == before  # nothing moved
    proxy.clear()
    assert op.call(other, context)["ok"]  # the same call succeeds once the fault is gone
    assert state(ledger, other) == op.moved


@pytest.mark.parametrize("name", ["settle", "renew"])
def test_a_throttled_read_of_the_hold_is_retryable_not_a_crash(
    name: str, proxy: fault_proxy.FaultProxy, ledger: Ledger, customer_id: str
) -> None:
    op = OPS[name]
    op.setup(ledger, customer_id)
    before = state(ledger, customer_id)
    proxy.inject_always("GetItem", "throttle")
    outcome = op.call(customer_id, None)
    assert (outcome["ok"], outcome["retryable"]) == (False, True)
    assert state(ledger, customer_id) == before
