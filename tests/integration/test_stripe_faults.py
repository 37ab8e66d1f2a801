"""Stripe faults in purchase and webhook (issue 16): a 5xx (or a lost answer) while creating
the Checkout Session never makes a second order or a second session for the same retry, and
a webhook that dies after crediting, before answering, is redelivered and credits nothing
more. Balance = sum of entries after each."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local import identity
from local.devserver import DevServer
from tests import stripe_events
from tests.conftest import FakeLambdaContext
from tests.integration.helpers import assert_consistent, http_json, use_local_stripe
from token_billing.store.ledger import Ledger
from token_billing.store.orders import OrderStore

PURCHASE = "/api/v1/customers/{}/tokens/purchase"


@pytest.fixture(scope="module")
def server(dev_server: DevServer) -> DevServer:
    return dev_server


@pytest.fixture(autouse=True)
def stripe_env(server: DevServer, local_aws: None) -> None:
    use_local_stripe(server)


@pytest.fixture
def failing_stripe(server: DevServer, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Script the fake Stripe's answers to session creation: "commit-then-500" creates the
    session and answers 500 (the answer is lost to the caller), "500" fails outright."""
    script: list[str] = []
    real = server.fake_stripe.handle

    def handle(method: str, path: str, headers: dict[str, str], body: str) -> tuple[int, Any]:
        if path == "/v1/checkout/sessions" and method == "POST" and script:
            step = script.pop(0)
            if step == "commit-then-500":
                real(method, path, headers, body)
            return 500, {"error": {"type": "api_error", "message": "injected"}}
        return real(method, path, headers, body)

    monkeypatch.setattr(server.fake_stripe, "handle", handle)
    return script


def purchase(server: DevServer, customer_id: str, key: str) -> tuple[int, dict[str, Any]]:
    token = identity.mint(customer_id=customer_id)
    return http_json(
        server.url,
        "POST",
        PURCHASE.format(customer_id),
        {"package_id": "growth"},
        token=token,
        headers={"Idempotency-Key": key},
    )


def sessions_for(server: DevServer, customer_id: str) -> list[str]:
    return [
        session_id
        for session_id, session in server.fake_stripe.sessions.items()
        if (session.get("metadata") or {}).get("customer_id") == customer_id
    ]


def orders_of(ledger: Ledger, customer_id: str) -> list[str]:
    page = OrderStore(ledger._client, "LedgerTable").list_for_customer(customer_id, limit=50)
    return [order.order_id for order in page[0]]


def test_a_lost_answer_from_stripe_makes_no_second_session(
    server: DevServer, failing_stripe: list[str], ledger: Ledger, customer_id: str
) -> None:
    failing_stripe.append("commit-then-500")  # the SDK retries with the same key
    status, body = purchase(server, customer_id, "buy-1")
    assert status == 200, body
    assert sessions_for(server, customer_id) == [body["session_id"]]
    assert orders_of(ledger, customer_id) == [body["order_id"]]


def test_stripe_failing_every_attempt_is_retryable_and_the_retry_makes_one_of_each(
    server: DevServer, failing_stripe: list[str], ledger: Ledger, customer_id: str
) -> None:
    failing_stripe.extend(["commit-then-500", "500", "500"])  # all of the SDK's attempts
    status, body = purchase(server, customer_id, "buy-2")
    assert status == 503, body
    assert body["error"]["retryable"] is True
    status, retried = purchase(server, customer_id, "buy-2")  # the client's retry
    assert status == 200, retried
    assert sessions_for(server, customer_id) == [retried["session_id"]]
    assert orders_of(ledger, customer_id) == [retried["order_id"]]
    status, again = purchase(server, customer_id, "buy-2")
    assert (status, again["session_id"]) == (200, retried["session_id"])


def test_a_webhook_that_dies_after_crediting_is_redelivered_and_credits_nothing_more(
    server: DevServer, ledger: Ledger, customer_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webhook_handler

    status, body = purchase(server, customer_id, "buy-3")
    assert status == 200, body
    session = stripe_events.checkout_session(
        session_id=body["session_id"],
        customer_id=customer_id,
        order_id=body["order_id"],
        package_id="growth",
        amount_total=4_900,
    )
    event = stripe_events.event_body("checkout.session.completed", session, event_id="evt_die")
    real = webhook_handler.json_response_dict  # type: ignore[attr-defined]
    deaths = [RuntimeError("the function timed out before answering")]

    def dying(status: int, body: Any) -> dict[str, Any]:
        if deaths:
            raise deaths.pop()
        return real(status, body)

    monkeypatch.setattr(webhook_handler, "json_response_dict", dying)
    with pytest.raises(RuntimeError):
        webhook_handler.lambda_handler(stripe_events.webhook_request(event), FakeLambdaContext())
    assert assert_consistent(ledger, customer_id).balance_mt == 6_500_000  # credited once
    # Stripe saw no 2xx, so it redelivers the same event (freshly signed).
    reply = webhook_handler.lambda_handler(
        stripe_events.webhook_request(event), FakeLambdaContext()
    )
    assert reply["statusCode"] == 200
    assert json.loads(reply["body"])["action"] == "already_credited"
    assert assert_consistent(ledger, customer_id).balance_mt == 6_500_000
    assert len(list(ledger.iter_entries(customer_id))) == 1
